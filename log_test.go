package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRedactor(t *testing.T) {
	tests := []struct{ in, want string }{
		{`token=xoxb-1234-5678-abcDEF&x=1`, `token=[redacted]&x=1`},
		{`{"app":"xapp-1-A0-123-abc"}`, `{"app":"[redacted]"}`},
		{`user xoxp-1-2-3 refresh xoxe-1-abc`, `user [redacted] refresh [redacted]`},
		{`detail: Post "https://hooks.slack.com/commands/T0ABC/1234567/AbCdEf0123": dial tcp`, `detail: Post "[redacted]": dial tcp`},
		{`url=http://127.0.0.1:4000/actions/T0FAKE/7/0123abcd rest`, `url=[redacted] rest`},
		{`my-custom-secret-value in text`, `[redacted] in text`},
		{`nothing to hide: /stopdeploy d-LGUMS25CC`, `nothing to hide: /stopdeploy d-LGUMS25CC`},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		r := newRedactor(&out, "my-custom-secret-value")
		n, err := r.Write([]byte(tt.in))
		if err != nil || n != len(tt.in) {
			t.Errorf("Write(%q) = %d, %v", tt.in, n, err)
		}
		if got := out.String(); got != tt.want {
			t.Errorf("redacted %q\n got: %s\nwant: %s", tt.in, got, tt.want)
		}
		if strings.Contains(out.String(), "abcDEF") {
			t.Errorf("secret survived in %q", out.String())
		}
	}
}
