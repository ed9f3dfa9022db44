package fakeslack

import "time"

// ChannelRate is Slack's special limit on chat.postMessage: "generally
// allows an app to post 1 message per second to a specific channel, with
// short bursts over 1 allowed" (the chat.postMessage method page, Rate
// limits). Over it, Slack answers HTTP 429 with Retry-After. Slack does not
// publish the burst size; tests pick one.
type ChannelRate struct {
	PerSecond float64 // sustained posts per second per channel; 0: no limit
	Burst     int     // posts allowed at once before the rate applies
}

// bucket is one channel's allowance.
type bucket struct {
	tokens float64
	at     time.Time
}

// allowPostLocked takes one post from the channel's allowance, or reports
// that Slack would refuse it (and counts the refusal).
func (s *Server) allowPostLocked(channel string) bool {
	r := s.opts.ChannelRate
	if r.PerSecond <= 0 {
		return true
	}
	now := time.Now()
	b, ok := s.buckets[channel]
	if !ok {
		b = &bucket{tokens: float64(r.Burst), at: now}
		s.buckets[channel] = b
	}
	b.tokens = min(float64(r.Burst), b.tokens+now.Sub(b.at).Seconds()*r.PerSecond)
	b.at = now
	if b.tokens < 1 {
		s.limited[channel]++
		return false
	}
	b.tokens--
	return true
}

// RateLimited is how many chat.postMessage calls to channel were answered
// 429 under Options.ChannelRate.
func (s *Server) RateLimited(channel string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limited[channel]
}
