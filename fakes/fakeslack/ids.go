package fakeslack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// randomHex returns n random bytes as hex; used for tickets and response URL paths.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

// uuid returns a random version-4 UUID, the shape of Slack's envelope_id.
func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomBlockID returns an ID like the ones Slack generates for blocks and actions left without
// one (for example "hX2a9").
func randomBlockID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return string(b)
}

// triggerID returns a value shaped like Slack's trigger_id.
func triggerID() string {
	return fmt.Sprintf("%d.%d.%s", time.Now().UnixNano()%1e11, time.Now().Unix()%1e9, randomHex(16))
}

// actionTS returns an action_ts: the click time with microseconds.
func actionTS() string {
	now := time.Now()
	return fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
}
