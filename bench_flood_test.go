package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/fakes/fakeslack"
)

// BenchmarkFlood: 20,000 refused commands from one user who is not allowed,
// while Slack answers every call after 10 s, and in the middle of it a stop
// confirmed by someone else. Reports the bot's peak resident memory, its
// goroutines and open descriptors at the end of the flood (from its own
// /metrics), the slowest ack, and the time from that click to
// StopDeployment. Targets (README): ≤ 64 MiB, ≤ 2,000 goroutines,
// ≤ 500 fds, every ack within 1 s, the stop within 1 s and reported.
func BenchmarkFlood(b *testing.B) {
	const flood, senders = 20_000, 64
	for b.Loop() {
		w := benchWorld(b, 0)
		bot := w.start("bot", map[string]string{"STOPDEPLOY_HTTP_ADDR": "127.0.0.1:0"})
		metricsAddr := bot.waitLog("metrics address", func(l logLine) bool { return l.msg() == "serving health and metrics" }).str("addr")
		w.command(alice, deploys, running)
		conf := w.confirmation(deploys, running)
		for _, m := range []string{"chat.postMessage", "chat.postEphemeral", "chat.update", "usergroups.users.list", "response_url"} {
			w.slack.SetLatency(m, 10*time.Second)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		var (
			worstAck atomic.Int64
			next     atomic.Int64
			clicked  time.Time
			clickMu  sync.Mutex
			wg       sync.WaitGroup
		)
		for range senders {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > flood {
						return
					}
					if i == flood/2 {
						clickMu.Lock()
						clicked = w.clickSent(carol, conf, "stop")
						clickMu.Unlock()
					}
					id, err := w.slack.SendSlashCommand(ctx, fakeslack.SlashCommand{UserID: mallory, ChannelID: deploys, Text: running})
					if err != nil {
						b.Error(err)
						return
					}
					ack, err := w.slack.WaitAck(ctx, id)
					if err != nil {
						b.Error(err)
						return
					}
					lag := int64(ack.AckedAt.Sub(ack.SentAt))
					for {
						old := worstAck.Load()
						if lag <= old || worstAck.CompareAndSwap(old, lag) {
							break
						}
					}
				}
			})
		}
		wg.Wait()
		goroutines, fds := scrapeGauge(b, metricsAddr, "go_goroutines"), scrapeGauge(b, metricsAddr, "process_open_fds")
		rss := peakRSS(b, bot.cmd.Process.Pid)
		stop := w.waitCalls("StopDeployment", running, 1)[0]
		// Reported, after Slack's 10 s.
		rctx, rcancel := context.WithTimeout(ctx, time.Minute)
		if _, err := w.slack.WaitMessage(rctx, func(m fakeslack.Message) bool {
			return m.ThreadTS == conf.TS && strings.Contains(m.Text, "CodeDeploy answered")
		}); err != nil {
			b.Errorf("the stop in the flood was not reported: %v", err)
		}
		rcancel()
		cancel()

		b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
		b.ReportMetric(goroutines, "goroutines")
		b.ReportMetric(fds, "open-fds")
		b.ReportMetric(float64(time.Duration(worstAck.Load()).Milliseconds()), "ack-max-ms")
		clickMu.Lock()
		b.ReportMetric(float64(stop.At.Sub(clicked).Milliseconds()), "click-to-stop-ms")
		clickMu.Unlock()
		b.ReportMetric(float64(len(bot.auditsOf(running, "refused"))), "refusals-handled")
	}
}

// scrapeGauge reads one unlabelled gauge from the bot's /metrics.
func scrapeGauge(tb testing.TB, addr, name string) float64 {
	tb.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return f
		}
	}
	tb.Fatal(fmt.Sprintf("no %s in /metrics", name))
	return 0
}
