package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/metrics"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestHealthzFollowsTheSocket(t *testing.T) {
	m := metrics.New()
	h := m.Handler()
	for _, step := range []struct {
		up   *bool
		want int
	}{
		{nil, http.StatusServiceUnavailable},
		{ptr(true), http.StatusOK},
		{ptr(false), http.StatusServiceUnavailable},
		{ptr(true), http.StatusOK},
	} {
		if step.up != nil {
			m.Connection(*step.up)
		}
		if code, body := get(t, h, "/healthz"); code != step.want {
			t.Errorf("after Connection(%v): /healthz = %d %q, want %d", step.up, code, body, step.want)
		}
	}
}

func TestMetricsExposition(t *testing.T) {
	m := metrics.New()
	m.Command("confirmation_posted")
	m.Command("confirmation_posted")
	m.Command("usage")
	m.Stop("Pending", "default", "us-east-1")
	m.Stop("error", "prod", "eu-west-1")
	m.Refused("user_not_allowed")
	m.Acked(200 * time.Microsecond)
	m.Connection(true)
	m.Connection(false)
	m.Connection(true)
	m.APIError("slack", "chat.postMessage", "not_in_channel")
	m.APIError("aws", "StopDeployment", "throttled")

	code, body := get(t, m.Handler(), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`stopdeploy_commands_total{outcome="confirmation_posted"} 2`,
		`stopdeploy_commands_total{outcome="usage"} 1`,
		`stopdeploy_stops_total{account="default",region="us-east-1",result="Pending"} 1`,
		`stopdeploy_stops_total{account="prod",region="eu-west-1",result="error"} 1`,
		`stopdeploy_refusals_total{reason="user_not_allowed"} 1`,
		`stopdeploy_ack_seconds_bucket{le="0.0005"} 1`,
		`stopdeploy_ack_seconds_count 1`,
		`stopdeploy_socket_connects_total 2`,
		`stopdeploy_socket_connected 1`,
		`stopdeploy_api_errors_total{api="slack",code="not_in_channel",method="chat.postMessage"} 1`,
		`stopdeploy_api_errors_total{api="aws",code="throttled",method="StopDeployment"} 1`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestServer(t *testing.T) {
	if _, err := metrics.Listen("256.0.0.1:bad", http.NotFoundHandler()); err == nil {
		t.Error("Listen on a bad address succeeded")
	}
	m := metrics.New()
	m.Connection(true)
	srv, err := metrics.Listen("127.0.0.1:0", m.Handler())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	resp, err := http.Get("http://" + srv.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/healthz = %d %q", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v after its context ended", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

func ptr[T any](v T) *T { return &v }
