package commands_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stopdeploy/stopdeploy/commands"
)

func TestParse_Request(t *testing.T) {
	tests := []struct {
		text string
		want commands.Request
	}{
		{"d-LGUMS25CC", commands.Request{DeploymentID: "d-LGUMS25CC"}},
		{"d-LGUMS25CC rollback", commands.Request{DeploymentID: "d-LGUMS25CC", Rollback: true}},
		{"d-LGUMS25CC no-rollback", commands.Request{DeploymentID: "d-LGUMS25CC"}},
		{"  d-lgums25cc   ROLLBACK \n", commands.Request{DeploymentID: "d-LGUMS25CC", Rollback: true}},
		{"D-LGUMS25CC No-Rollback", commands.Request{DeploymentID: "d-LGUMS25CC"}},
		{"`d-LGUMS25CC` rollback", commands.Request{DeploymentID: "d-LGUMS25CC", Rollback: true}},
		{"<https://us-east-1.console.aws.amazon.com/codesuite/codedeploy/deployments/d-LGUMS25CC?region=us-east-1> rollback",
			commands.Request{DeploymentID: "d-LGUMS25CC", Rollback: true}},
		{"<https://us-east-1.console.aws.amazon.com/codesuite/codedeploy/deployments/d-lgums25cc?region=us-east-1|the deploy>",
			commands.Request{DeploymentID: "d-LGUMS25CC"}},
		{"https://console.aws.amazon.com/codesuite/codedeploy/deployments/d-LGUMS25CC",
			commands.Request{DeploymentID: "d-LGUMS25CC"}},
		{"<https://eu-west-1.console.aws.amazon.com/codedeploy/home?region=eu-west-1#/deployments/d-AB12CD34E>",
			commands.Request{DeploymentID: "d-AB12CD34E"}},
		{"<https://cn-north-1.console.amazonaws.cn/codesuite/codedeploy/deployments/d-AB12CD34E/d-AB12CD34E>",
			commands.Request{DeploymentID: "d-AB12CD34E"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := commands.Parse(tt.text)
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.text, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestParse_HelpResponse(t *testing.T) {
	for _, text := range []string{"", "   ", "help", "HELP", " help \t"} {
		t.Run(text, func(t *testing.T) {
			if _, err := commands.Parse(text); !errors.Is(err, commands.ErrHelp) {
				t.Errorf("Parse(%q) error = %v, want ErrHelp", text, err)
			}
		})
	}
}

func TestParse_UsageError(t *testing.T) {
	tests := []struct {
		text, reason string
	}{
		{"stop", `"stop" is not a deployment ID: expected ` + "`d-`" + ` followed by 9 letters or digits, like ` + "`d-LGUMS25CC`."},
		{"d-LGUMS25C", `"d-LGUMS25C" is not a deployment ID: expected ` + "`d-`" + ` followed by 9 letters or digits, like ` + "`d-LGUMS25CC`."},
		{"d-LGUMS25CCX", `"d-LGUMS25CCX" is not a deployment ID: expected ` + "`d-`" + ` followed by 9 letters or digits, like ` + "`d-LGUMS25CC`."},
		{"d-LGUMS25C! rollback", `"d-LGUMS25C!" is not a deployment ID: expected ` + "`d-`" + ` followed by 9 letters or digits, like ` + "`d-LGUMS25CC`."},
		{"d-LGUMS25CC roll", `"roll" is not an option: use rollback|no-rollback.`},
		{"d-LGUMS25CC rollback now", "Too many words: expected a deployment and at most one of rollback|no-rollback."},
		{"rollback d-LGUMS25CC", `"rollback" is not a deployment ID: expected ` + "`d-`" + ` followed by 9 letters or digits, like ` + "`d-LGUMS25CC`."},
		{"<https://evil.example.com/d-LGUMS25CC>", "That link is not an AWS CodeDeploy console link: paste the deployment ID (`d-…`) instead."},
		{"<https://console.aws.amazon.com.evil.example/d-LGUMS25CC>", "That link is not an AWS CodeDeploy console link: paste the deployment ID (`d-…`) instead."},
		{"<https://console.aws.amazon.com/codesuite/codedeploy/applications/web>", "That console link names no deployment (`d-…`): open the deployment's page and copy its link, or paste the ID."},
		{"<https://console.aws.amazon.com/codesuite/codedeploy/deployments/d-AAAAAAAAA/d-BBBBBBBBB>", "That console link names more than one deployment: paste the deployment ID instead."},
		{"<http://console.aws.amazon.com/codesuite/codedeploy/deployments/d-LGUMS25CC>", `"<http://console.aws.amazon.com/codesuite/codedeploy/deployments/d-LGUMS25CC>" is not a deployment ID: expected ` + "`d-`" + ` followed by 9 letters or digits, like ` + "`d-LGUMS25CC`."},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			_, err := commands.Parse(tt.text)
			var usage *commands.UsageError
			if !errors.As(err, &usage) {
				t.Fatalf("Parse(%q) error = %v, want *UsageError", tt.text, err)
			}
			if usage.Reason != tt.reason {
				t.Errorf("Parse(%q) reason\n got: %s\nwant: %s", tt.text, usage.Reason, tt.reason)
			}
		})
	}
}

func TestUsage_NamesEveryChoice(t *testing.T) {
	usage := commands.Usage()
	for _, want := range []string{"/stopdeploy <deployment> [rollback|no-rollback]", "`rollback`", "`no-rollback`", "`/stopdeploy d-LGUMS25CC rollback`"} {
		if !strings.Contains(usage, want) {
			t.Errorf("Usage() lacks %q:\n%s", want, usage)
		}
	}
}

func TestRequest_Command(t *testing.T) {
	for _, req := range []commands.Request{
		{DeploymentID: "d-LGUMS25CC", Rollback: true},
		{DeploymentID: "d-AB12CD34E"},
	} {
		text := req.Command()
		name, args, _ := strings.Cut(text, " ")
		if name != commands.Name {
			t.Errorf("Command() = %q, want it to start with %s", text, commands.Name)
		}
		got, err := commands.Parse(args)
		if err != nil || got != req {
			t.Errorf("Parse(Command()) = %+v, %v; want %+v", got, err, req)
		}
	}
}

func TestConfirmation_RoundTrip(t *testing.T) {
	c := commands.Confirmation{
		DeploymentID: "d-LGUMS25CC",
		Rollback:     true,
		RequesterID:  "U0ALICE",
		ChannelID:    "C0DEPLOYS",
		ExpiresAt:    time.Date(2026, 11, 26, 23, 9, 0, 0, time.UTC),
	}
	value := c.Encode()
	if value != "v2 d-LGUMS25CC rollback U0ALICE C0DEPLOYS 1795734540" {
		t.Errorf("Encode() = %q", value)
	}
	got, err := commands.DecodeConfirmation(value)
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Errorf("DecodeConfirmation(Encode()) = %+v, want %+v", got, c)
	}
}

func TestDecodeConfirmation_Rejects(t *testing.T) {
	for _, value := range []string{
		"",
		"v2",
		"v1 d-LGUMS25CC rollback U0ALICE 1795734540", // before the channel travelled in the value
		"v3 d-LGUMS25CC rollback U0ALICE C0DEPLOYS 1795734540",
		"v2 d-lgums25cc rollback U0ALICE C0DEPLOYS 1795734540",
		"v2 d-LGUMS25CC maybe U0ALICE C0DEPLOYS 1795734540",
		"v2 d-LGUMS25CC rollback alice C0DEPLOYS 1795734540",
		"v2 d-LGUMS25CC rollback U0ALICE deploys 1795734540",
		"v2 d-LGUMS25CC rollback U0ALICE U0BOB 1795734540",
		"v2 d-LGUMS25CC rollback U0ALICE C0DEPLOYS soon",
		"v2 d-LGUMS25CC rollback U0ALICE C0DEPLOYS -5",
		"v2 d-LGUMS25CC rollback U0ALICE C0DEPLOYS 01795734540",
		"v2 d-LGUMS25CC rollback U0ALICE C0DEPLOYS 1795734540 extra",
		"v2  d-LGUMS25CC rollback U0ALICE C0DEPLOYS 1795734540",
	} {
		t.Run(value, func(t *testing.T) {
			if c, err := commands.DecodeConfirmation(value); err == nil {
				t.Errorf("DecodeConfirmation(%q) = %+v, want an error", value, c)
			}
		})
	}
}

func TestConfirmation_Expired(t *testing.T) {
	expires := time.Date(2026, 11, 26, 23, 9, 0, 0, time.UTC)
	c := commands.Confirmation{ExpiresAt: expires}
	for _, tt := range []struct {
		now  time.Time
		want bool
	}{
		{expires.Add(-time.Second), false},
		{expires, true},
		{expires.Add(time.Second), true},
	} {
		if got := c.Expired(tt.now); got != tt.want {
			t.Errorf("Expired(%v) = %v, want %v", tt.now, got, tt.want)
		}
	}
}

// FuzzParse checks that no text panics the parser, and that whatever it
// accepts is a canonical ID whose command text parses back to itself.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{"d-LGUMS25CC rollback", "help", "", "<https://console.aws.amazon.com/codesuite/codedeploy/deployments/d-LGUMS25CC|x> no-rollback", "d-\u0130GUMS25CC", "d-LGUMS25C\u212a", "<https://x|a b> c"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		req, err := commands.Parse(text)
		if err != nil {
			var usage *commands.UsageError
			if !errors.Is(err, commands.ErrHelp) && !errors.As(err, &usage) {
				t.Fatalf("Parse(%q) returned an unexpected error type %T", text, err)
			}
			return
		}
		if !commands.ValidDeploymentID(req.DeploymentID) {
			t.Fatalf("Parse(%q) accepted non-canonical ID %q", text, req.DeploymentID)
		}
		_, args, _ := strings.Cut(req.Command(), " ")
		if again, err := commands.Parse(args); err != nil || again != req {
			t.Fatalf("Parse(%q) = %+v, but its command text parses to %+v, %v", text, req, again, err)
		}
	})
}

// FuzzDecodeConfirmation checks that a decoded value encodes to exactly the
// same string: there is one way to write each confirmation.
func FuzzDecodeConfirmation(f *testing.F) {
	for _, seed := range []string{"v2 d-LGUMS25CC rollback U0ALICE C0DEPLOYS 1795734540", "v2 d-AB12CD34E no-rollback W0BOB G0PRIVATE 1", "v2 d-LGUMS25CC rollback U0ALICE C0DEPLOYS +1795734540"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		c, err := commands.DecodeConfirmation(value)
		if err != nil {
			return
		}
		if got := c.Encode(); got != value {
			t.Fatalf("DecodeConfirmation(%q) re-encodes as %q", value, got)
		}
	})
}
