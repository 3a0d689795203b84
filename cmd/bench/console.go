package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The console phase (--only console): what open console pages cost the
// gateway. Each simulated page makes the requests the page's JavaScript
// makes (console/web/pages/*.js), at the same cadence: it loads the page's
// files once, then
//
//   - Overview: GET /v1/gateway every second;
//   - Groups, one group chosen: GET /v1/groups/{group} every second, GET
//     /v1/groups instead every tenth;
//   - Dead letters: GET /v1/topics once, then a peek (GET
//     /v1/topics/{dlq}/deadLetters?limit=50) every 10 s;
//   - Tail: one kgate.v1.Subscriber/Tail stream over the Connect protocol
//     (auto_ack, a group of its own), reading every record.
//
// A page waits its interval after each answer, as console/web/util.js's
// Poller does. Pages are spread evenly over the four kinds. The gateway
// runs under a light load (consolePublishRate records a second published
// over REST, read by one Subscribe-like Tail of a worker group) for two
// equal spells, without the pages and with them; the difference is the
// pages' cost.
var (
	consolePages       = flag.Int("console-pages", 20, "console phase: simulated open pages")
	consoleDuration    = flag.Duration("console-duration", 20*time.Second, "console phase: length of each measured spell (without and with the pages)")
	consolePublishRate = flag.Int("console-publish-rate", 50, "console phase: records per second of the light load")
)

// byteCounter counts the bytes a client's connections read and write
// (headers, bodies, framing).
type byteCounter struct{ in, out atomic.Int64 }

type countedConn struct {
	net.Conn
	c *byteCounter
}

func (c countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.c.in.Add(int64(n))
	return n, err
}

func (c countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.c.out.Add(int64(n))
	return n, err
}

func (b *byteCounter) client() *http.Client { return kindClient(b, nil) }

// kindClient is a client whose connections count into b and, when set, k.
func kindClient(b, k *byteCounter) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if k != nil {
				c = countedConn{c, k}
			}
			return countedConn{c, b}, nil
		},
		MaxIdleConnsPerHost: 4,
	}}
}

// consolePage is one simulated page.
type consolePage struct {
	base     string
	client   *http.Client
	requests *atomic.Int64
	errs     *atomic.Int64
	busy     *atomic.Int64 // peeks refused with 429 ADMIN_BUSY (retried at the next refresh, as the page does)
	failed   *sync.Map     // "status path" of failed requests
}

func (p *consolePage) get(ctx context.Context, path string) {
	req, err := http.NewRequestWithContext(ctx, "GET", p.base+path, nil)
	if err != nil {
		p.errs.Add(1)
		return
	}
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			p.errs.Add(1)
		}
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	p.requests.Add(1)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests && bytes.Contains(b, []byte("ADMIN_BUSY")) && p.busy != nil:
		p.busy.Add(1)
	case resp.StatusCode != http.StatusOK:
		p.errs.Add(1)
		if p.failed != nil {
			p.failed.Store(fmt.Sprintf("%d %s", resp.StatusCode, path), string(b))
		}
	}
}

// every calls f, then waits d after it returned, until ctx ends.
func every(ctx context.Context, d time.Duration, f func(tick int)) {
	for tick := 0; ; tick++ {
		f(tick)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// tail holds a Connect Tail stream open and reads it until ctx ends.
func (p *consolePage) tail(ctx context.Context, topic, group string) {
	body, _ := json.Marshal(map[string]any{"open": map[string]any{"topics": []string{topic}, "group": group,
		"startPosition": "START_POSITION_LATEST", "autoAck": true, "maxOutstandingMessages": 100, "maxMessagesPerResponse": 50}})
	var env bytes.Buffer
	env.WriteByte(0)
	_ = binary.Write(&env, binary.BigEndian, uint32(len(body)))
	env.Write(body)
	req, err := http.NewRequestWithContext(ctx, "POST", p.base+"/kgate.v1.Subscriber/Tail", &env)
	if err != nil {
		p.errs.Add(1)
		return
	}
	req.Header.Set("Content-Type", "application/connect+json")
	req.Header.Set("Connect-Protocol-Version", "1")
	resp, err := p.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			p.errs.Add(1)
		}
		return
	}
	defer resp.Body.Close()
	p.requests.Add(1)
	if resp.StatusCode != http.StatusOK {
		p.errs.Add(1)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
}

// consoleFiles are what a page loads once: its HTML, the stylesheet, the
// icon and the modules.
var consoleFiles = []string{"/", "/console/console.css", "/console/icon.svg", "/console/app.js", "/console/api.js", "/console/connect.js",
	"/console/util.js", "/console/chart.js", "/console/pages/overview.js", "/console/pages/groups.js", "/console/pages/deadletters.js", "/console/pages/tail.js"}

func (p *consolePage) run(ctx context.Context, kind int, i int, topic, group, dlq string) {
	for _, f := range consoleFiles {
		p.get(ctx, f)
	}
	switch kind {
	case 0:
		every(ctx, time.Second, func(int) { p.get(ctx, "/v1/gateway") })
	case 1:
		every(ctx, time.Second, func(tick int) {
			if tick%10 == 0 {
				p.get(ctx, "/v1/groups")
			} else {
				p.get(ctx, "/v1/groups/"+group)
			}
		})
	case 2:
		p.get(ctx, "/v1/topics")
		every(ctx, 10*time.Second, func(int) { p.get(ctx, "/v1/topics/"+dlq+"/deadLetters?limit=50") })
	case 3:
		p.tail(ctx, topic, fmt.Sprintf("anonymous.console.bench%d", i))
	}
}

// consoleSpell is one measured spell.
type consoleSpell struct {
	name                  string
	cpuPercent            float64 // of one core
	reqPerSec, inPerSec   float64
	outPerSec, loadPerSec float64
	errors                int64
	kindIn                [4]float64 // bytes/s to the pages of each kind
}

func runConsole(ctx context.Context, o *options) error {
	fmt.Printf("kgate bench, console phase: %d simulated pages, %v per spell, light load %d records/s\n", *consolePages, *consoleDuration, *consolePublishRate)
	brokers, brokerPID, err := startBroker(ctx, o)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	e := &env{o: o, brokers: brokers, brokerPID: brokerPID, adm: kadm.NewClient(cl)}
	topic, err := e.createTopic(ctx, "console-orders")
	if err != nil {
		return err
	}
	dlq, err := e.createTopic(ctx, "console-orders.dlq")
	if err != nil {
		return err
	}
	// Ten dead letters, as the gateway's dead-letter writer makes them, for
	// the dead-letter pages to peek at.
	for i := 0; i < 10; i++ {
		rec := &kgo.Record{Topic: dlq, Value: []byte(fmt.Sprintf(`{"order":%d}`, i)), Headers: []kgo.RecordHeader{
			{Key: "kgate.dlq.topic", Value: []byte(topic)}, {Key: "kgate.dlq.partition", Value: []byte("0")},
			{Key: "kgate.dlq.offset", Value: []byte(strconv.Itoa(i))}, {Key: "kgate.dlq.attempts", Value: []byte("5")},
			{Key: "kgate.dlq.reason", Value: []byte("bench")}}}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return fmt.Errorf("writing the bench's dead letters: %w", err)
		}
	}
	bin, err := o.binary("gateway", "./cmd/gateway")
	if err != nil {
		return err
	}
	gw, err := startChild(ctx, "gateway", bin, []string{"--brokers", brokers, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--metrics-listen", "", "--shutdown-timeout", "3s"}, func(line string) (string, bool) {
		if !strings.Contains(line, `msg="kgate listening"`) {
			return "", false
		}
		_, rest, ok := strings.Cut(line, " http=")
		if !ok {
			return "", false
		}
		addr, _, _ := strings.Cut(rest, " ")
		return strings.Trim(addr, `"`), true
	})
	if err != nil {
		return err
	}
	defer gw.stop()
	base := "http://" + gw.addr
	fmt.Printf("broker %s (pid %d), gateway HTTP %s (pid %d)\n", brokers, brokerPID, gw.addr, gw.pid)

	// The light load: publishes over REST, and a worker group reading them.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var loadWG sync.WaitGroup
	var loadErrs, published atomic.Int64
	loadClient := (&byteCounter{}).client()
	loadWG.Add(2)
	go func() {
		defer loadWG.Done()
		tick := time.NewTicker(time.Second / time.Duration(max(1, *consolePublishRate)))
		defer tick.Stop()
		body := `{"messages":[{"key":"b3JkZXI=","value":"eyJ0b3RhbCI6NDIsIml0ZW1zIjpbMSwyLDNdfQ=="}]}`
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			resp, err := loadClient.Post(base+"/v1/topics/"+topic+"/messages", "application/json", strings.NewReader(body))
			if err != nil {
				if loadCtx.Err() == nil {
					loadErrs.Add(1)
				}
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				loadErrs.Add(1)
			} else {
				published.Add(1)
			}
		}
	}()
	var workerReqs, workerErrs atomic.Int64
	go func() {
		defer loadWG.Done()
		w := &consolePage{base: base, client: loadClient, requests: &workerReqs, errs: &workerErrs}
		w.tail(loadCtx, topic, "console-bench-worker")
	}()
	// Let the worker join and the load settle.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(3 * time.Second):
	}

	var kinds [4]byteCounter // by page kind
	var busy atomic.Int64
	var failed sync.Map
	measure := func(name string, pages int) (consoleSpell, error) {
		var counter byteCounter
		var requests, errs atomic.Int64
		pctx, stopPages := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := 0; i < pages; i++ {
			p := &consolePage{base: base, client: kindClient(&counter, &kinds[i%4]), requests: &requests, errs: &errs, busy: &busy, failed: &failed}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Tabs are not opened in the same millisecond: spread
				// their starts over the first second.
				select {
				case <-pctx.Done():
					return
				case <-time.After(time.Duration(i) * time.Second / time.Duration(pages)):
				}
				p.run(pctx, i%4, i, topic, "console-bench-worker", dlq)
			}()
		}
		if pages > 0 {
			// The pages' first loads, then measure the steady state.
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
		c0, _ := cpuTime(gw.pid)
		r0, in0, out0, p0 := requests.Load(), counter.in.Load(), counter.out.Load(), published.Load()
		var kin0 [4]int64
		for k := range kinds {
			kin0[k] = kinds[k].in.Load()
		}
		t0 := time.Now()
		select {
		case <-ctx.Done():
		case <-time.After(*consoleDuration):
		}
		c1, _ := cpuTime(gw.pid)
		wall := time.Since(t0)
		s := consoleSpell{name: name, cpuPercent: 100 * float64(c1-c0) / float64(wall),
			reqPerSec: float64(requests.Load()-r0) / wall.Seconds(), inPerSec: float64(counter.in.Load()-in0) / wall.Seconds(),
			outPerSec: float64(counter.out.Load()-out0) / wall.Seconds(), loadPerSec: float64(published.Load()-p0) / wall.Seconds()}
		for k := range kinds {
			s.kindIn[k] = float64(kinds[k].in.Load()-kin0[k]) / wall.Seconds()
		}
		stopPages()
		wg.Wait()
		s.errors = errs.Load()
		return s, ctx.Err()
	}
	idle, err := measure("light load, no page", 0)
	if err != nil {
		return err
	}
	open, err := measure(fmt.Sprintf("light load + %d pages", *consolePages), *consolePages)
	if err != nil {
		return err
	}
	stopLoad()
	loadWG.Wait()
	fmt.Printf("\n%-26s %10s %12s %14s %14s %12s\n", "spell", "gateway", "page req/s", "to pages B/s", "from pages B/s", "published/s")
	for _, s := range []consoleSpell{idle, open} {
		fmt.Printf("%-26s %9.1f%% %12.1f %14.0f %14.0f %12.1f\n", s.name, s.cpuPercent, s.reqPerSec, s.inPerSec, s.outPerSec, s.loadPerSec)
	}
	n := float64(max(1, *consolePages))
	fmt.Printf("\n%d open pages cost the gateway %.1f%% of one core (%.2f%% a page), %.1f requests/s (%.2f a page) and %.0f B/s to the pages (%.0f a page), besides %d open Tail streams.\n",
		*consolePages, open.cpuPercent-idle.cpuPercent, (open.cpuPercent-idle.cpuPercent)/n, open.reqPerSec, open.reqPerSec/n, open.inPerSec, open.inPerSec/n, *consolePages/4)
	per := float64(max(1, *consolePages/4))
	fmt.Printf("to each page, by kind: overview %.0f B/s, groups %.0f B/s, dead letters %.0f B/s, tail %.0f B/s (its records: %.0f a second)\n",
		open.kindIn[0]/per, open.kindIn[1]/per, open.kindIn[2]/per, open.kindIn[3]/per, open.loadPerSec)
	if n := busy.Load(); n > 0 {
		fmt.Printf("note: %d peeks were refused ADMIN_BUSY (more than 4 at once); the page retries at its next refresh\n", n)
	}
	if open.errors > 0 || loadErrs.Load() > 0 || workerErrs.Load() > 0 {
		failed.Range(func(k, v any) bool { fmt.Printf("failed: %s: %s\n", k, v); return true })
		return fmt.Errorf("the pages had %d failed requests, the load %d, the worker %d", open.errors, loadErrs.Load(), workerErrs.Load())
	}
	if n := gw.errorLines(); n > 0 {
		fmt.Printf("note: the gateway logged %d ERROR lines\n", n)
	}
	return nil
}
