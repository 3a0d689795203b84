package server

import (
	"log/slog"

	"google.golang.org/grpc"
)

// CodeOf exposes codeOf to the external tests.
var CodeOf = codeOf

// CallLogUnary exposes the call-logging interceptor to the external tests.
func CallLogUnary(log *slog.Logger) grpc.UnaryServerInterceptor { return (&calls{log: log}).unary }
