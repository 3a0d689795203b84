package server

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// LimitListener returns a listener that holds at most max connections open
// at once (max ≤ 0: no bound). A connection beyond them is closed as soon
// as it is accepted: its client sees UNAVAILABLE and can retry, here later
// or at another instance, where a listener that stopped accepting would
// leave it waiting in the kernel's backlog until it times out. Open
// connections are kgate_connections; refused ones are counted in
// kgate_refused_connections_total and summed up in one warning a minute at
// most.
func LimitListener(l net.Listener, max int, m *Metrics, log *slog.Logger) net.Listener {
	if max <= 0 {
		return l
	}
	if log == nil {
		log = slog.Default()
	}
	return &limitListener{Listener: l, max: int64(max), metrics: m, log: log}
}

type limitListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	metrics *Metrics
	log     *slog.Logger
	refused everyMinute
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.metrics.refusedConnection() // counted before the client can see the close
			_ = c.Close()
			if n, due := l.refused.add(time.Now()); due {
				l.log.Warn("refusing connections: the gateway holds the most it allows (--max-connections)", "open", l.max, "refused", n, "last_peer", c.RemoteAddr().String())
			}
			continue
		}
		l.metrics.connections(1)
		return &limitConn{Conn: c, l: l}, nil
	}
}

// limitConn gives its slot back when closed.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.metrics.connections(-1)
	})
	return err
}

// everyMinute counts events that are logged as a sum, at most once a
// minute, instead of one line each. It is safe for concurrent use.
type everyMinute struct {
	n    atomic.Int64 // since the last report
	last atomic.Int64 // unix nanoseconds of the last report; 0: none yet
}

// add counts one event. When a report is due it returns the events since
// the last one and true.
func (e *everyMinute) add(now time.Time) (int64, bool) {
	e.n.Add(1)
	t, last := now.UnixNano(), e.last.Load()
	if (last != 0 && t-last < int64(time.Minute)) || !e.last.CompareAndSwap(last, t) {
		return 0, false
	}
	return e.n.Swap(0), true
}
