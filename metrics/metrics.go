// Package metrics serves the bot's health and Prometheus metrics over HTTP.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics records what the bot does (it implements bot.Observer) and
// serves /healthz and /metrics.
type Metrics struct {
	registry  *prometheus.Registry
	commands  *prometheus.CounterVec
	stops     *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	acks      prometheus.Histogram
	connects  prometheus.Counter
	connected prometheus.Gauge
	apiErrors *prometheus.CounterVec
	socketUp  atomic.Bool

	storeErrors prometheus.Counter
	storeDown   atomic.Bool
}

// New returns Metrics with their own registry, including the Go runtime
// and process collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stopdeploy_commands_total",
			Help: "Slash commands, by how they ended (confirmation_posted, usage, refused, not_found, already_completed, …).",
		}, []string{"outcome"}),
		stops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stopdeploy_stops_total",
			Help: "StopDeployment calls, by CodeDeploy's status (Pending, Succeeded, Forced) or error, and by the account (the bot's name for it) and region.",
		}, []string{"result", "account", "region"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stopdeploy_refusals_total",
			Help: "Refused commands and clicks, by reason.",
		}, []string{"reason"}),
		acks: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "stopdeploy_ack_seconds",
			Help:    "Time from an envelope's frame being read to its acknowledgement being written to the socket.",
			Buckets: []float64{1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 3},
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stopdeploy_socket_connects_total",
			Help: "Socket Mode connections established (hello received); more than one means reconnects.",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stopdeploy_socket_connected",
			Help: "1 while the Socket Mode connection is up.",
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stopdeploy_state_table_errors_total",
			Help: "State-table (DynamoDB) calls that failed for another reason than a lost conditional write.",
		}),
		apiErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stopdeploy_api_errors_total",
			Help: "Failed Slack and CodeDeploy calls, by API (slack, aws), method and error code.",
		}, []string{"api", "method", "code"}),
	}
	m.registry.MustRegister(m.commands, m.stops, m.refusals, m.acks, m.connects, m.connected, m.apiErrors, m.storeErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) Command(outcome string) { m.commands.WithLabelValues(outcome).Inc() }
func (m *Metrics) Stop(result, account, region string) {
	m.stops.WithLabelValues(result, account, region).Inc()
}
func (m *Metrics) Refused(reason string)    { m.refusals.WithLabelValues(reason).Inc() }
func (m *Metrics) Acked(took time.Duration) { m.acks.Observe(took.Seconds()) }

func (m *Metrics) APIError(api, method, code string) {
	m.apiErrors.WithLabelValues(api, method, code).Inc()
}

// Connection records the socket going up or down.
func (m *Metrics) Connection(up bool) {
	if up {
		m.connects.Inc()
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
	m.socketUp.Store(up)
}

// StoreError records a failed state-table call: /healthz answers 503 until
// a call succeeds again.
func (m *Metrics) StoreError() {
	m.storeErrors.Inc()
	m.storeDown.Store(true)
}

// StoreOK records a state-table call that worked.
func (m *Metrics) StoreOK() { m.storeDown.Store(false) }

// Handler serves GET /healthz (200 only while the socket is up and the
// state table, if any, answers; else 503) and GET /metrics.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !m.socketUp.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "socket mode connection is down")
			return
		}
		if m.storeDown.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "the state table (STOPDEPLOY_STATE_TABLE) cannot be reached: clicks are refused")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	return mux
}

// Server serves a handler until its context ends.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen opens addr at once, so a bad address fails at start-up.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, ln: ln}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve blocks until ctx ends, then shuts down within 5 s.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("metrics server shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
