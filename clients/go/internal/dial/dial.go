// Package dial opens the gRPC connection to the brokers for the worker and the client: the one
// place that knows the address defaults, TLS, the API key, keepalive and message limits.
//
// grpc-go 1.33 (Debian 12) has grpc.Dial and grpc.WithInsecure; grpc-go 1.63 and later prefer
// grpc.NewClient and credentials/insecure.NewCredentials(), which 1.33 lacks. When moving to a newer
// grpc-go, change Dial below and nothing else.
package dial

import (
	"context"
	"crypto/tls"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// DefaultAddress is used when neither the options nor $BATON_ADDRESS name a broker.
const DefaultAddress = "localhost:7700"

// MaxReceiveBytes is the receive limit: one broker message may carry many jobs of up to
// max_payload_bytes each, and gRPC's default of 4 MiB is too little (docs/protocol.md, section 1).
const MaxReceiveBytes = 64 << 20

// Options say where the brokers are and how to reach them.
type Options struct {
	// Address is a gRPC target (host:port, dns:///name:port, ...); default $BATON_ADDRESS, else
	// localhost:7700.
	Address string
	// Token is sent as "authorization: Bearer <token>"; default $BATON_TOKEN.
	Token string
	// TLS, when set, connects with TLS (its RootCAs, and Certificates for mutual TLS); default cleartext.
	TLS *tls.Config
	// MaxReconnectDelay caps grpc-go's own backoff between connection attempts; default 10 s
	// (grpc-go's is 120 s, far too long to notice a restarted broker).
	MaxReconnectDelay time.Duration
	// Extra are added after the defaults.
	Extra []grpc.DialOption
}

// Resolved fills the defaults in: the address and the token from the environment.
func (o Options) Resolved() Options {
	if o.Address == "" {
		o.Address = os.Getenv("BATON_ADDRESS")
	}
	if o.Address == "" {
		o.Address = DefaultAddress
	}
	if o.Token == "" {
		o.Token = os.Getenv("BATON_TOKEN")
	}
	if o.MaxReconnectDelay <= 0 {
		o.MaxReconnectDelay = 10 * time.Second
	}
	return o
}

// Dial returns a connection to the brokers (Options.Resolved first). It does not wait for the
// network: the connection connects on first use and reconnects by itself, and one connection
// carries every call and stream of its owner.
func Dial(o Options) (*grpc.ClientConn, error) {
	o = o.Resolved()
	transport := grpc.WithInsecure()
	if o.TLS != nil {
		transport = grpc.WithTransportCredentials(credentials.NewTLS(o.TLS))
	}
	options := []grpc.DialOption{
		transport,
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: o.MaxReconnectDelay},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxReceiveBytes)),
	}
	if o.Token != "" {
		options = append(options, grpc.WithPerRPCCredentials(bearer{token: o.Token}))
	}
	return grpc.Dial(o.Address, append(options, o.Extra...)...)
}

// bearer sends the API key with every call.
type bearer struct{ token string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false so that keys also work over cleartext (a broker on localhost,
// or behind a TLS-terminating proxy); over TLS they are sent encrypted.
func (b bearer) RequireTransportSecurity() bool { return false }
