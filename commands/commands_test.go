package commands_test

import (
	"errors"
	"reflect"
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
			commands.Request{DeploymentID: "d-LGUMS25CC", Rollback: true, Region: "us-east-1"}},
		{"<https://us-east-1.console.aws.amazon.com/codesuite/codedeploy/deployments/d-lgums25cc?region=us-east-1|the deploy>",
			commands.Request{DeploymentID: "d-LGUMS25CC", Region: "us-east-1"}},
		{"<https://console.aws.amazon.com/codesuite/codedeploy/deployments/d-LGUMS25CC?region=ap-southeast-2>",
			commands.Request{DeploymentID: "d-LGUMS25CC", Region: "ap-southeast-2"}},
		{"checkout production", commands.Request{Application: "checkout", Group: "production"}},
		{"checkout prod-eu.1 ROLLBACK", commands.Request{Application: "checkout", Group: "prod-eu.1", Rollback: true}},
		{"list", commands.Request{List: true}},
		{"LIST checkout", commands.Request{List: true, Application: "checkout"}},
		{"list checkout production", commands.Request{List: true, Application: "checkout", Group: "production"}},
		{"https://console.aws.amazon.com/codesuite/codedeploy/deployments/d-LGUMS25CC",
			commands.Request{DeploymentID: "d-LGUMS25CC"}},
		{"<https://eu-west-1.console.aws.amazon.com/codedeploy/home?region=eu-west-1#/deployments/d-AB12CD34E>",
			commands.Request{DeploymentID: "d-AB12CD34E", Region: "eu-west-1"}},
		{"<https://eu-west-1.console.aws.amazon.com/codesuite/codedeploy/deployments/d-AB12CD34E>",
			commands.Request{DeploymentID: "d-AB12CD34E", Region: "eu-west-1"}},
		{"<https://cn-north-1.console.amazonaws.cn/codesuite/codedeploy/deployments/d-AB12CD34E/d-AB12CD34E>",
			commands.Request{DeploymentID: "d-AB12CD34E", Region: "cn-north-1"}},
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
		{"checkout", `"checkout" is not a deployment ID: expected ` + "`d-`" + ` followed by 9 letters or digits, like ` + "`d-LGUMS25CC`."},
		{"checkout rollback", `"checkout" is not a deployment ID, and "rollback" is an option, not a deployment group: give the deployment ID, or the application and its deployment group.`},
		{"checkout production now", `"now" is not an option: use rollback|no-rollback.`},
		{"checkout production rollback now", "Too many words: expected an application, a deployment group and at most one of rollback|no-rollback."},
		{"checkout prod<uction", `"prod<uction" is not a CodeDeploy application or deployment group name (letters, digits and . _ - + = , @).`},
		{"list a b c", "Too many words: `/stopdeploy list` takes at most an application and a deployment group."},
		{"list che/ckout", `"che/ckout" is not a CodeDeploy application or deployment group name (letters, digits and . _ - + = , @).`},
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
		{Application: "checkout", Group: "production", Rollback: true},
		{List: true},
		{List: true, Application: "checkout", Group: "production"},
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
	key := commands.DeriveKey("xapp-1-test")
	for _, c := range []commands.Confirmation{
		{
			Account: "default", Region: "us-east-1", DeploymentID: "d-LGUMS25CC", Rollback: true,
			RequesterID: "U0ALICE", ChannelID: "C0DEPLOYS", ExpiresAt: time.Date(2026, 11, 26, 23, 9, 0, 0, time.UTC),
			Rule: "allowed list",
		},
		{
			Account: "prod", Region: "eu-west-1", DeploymentID: "d-AB12CD34E",
			RequesterID: "U0ALICE", ChannelID: "G0PRIVATE", ExpiresAt: time.Date(2026, 11, 26, 23, 9, 0, 0, time.UTC),
			Rule: "production / 100% of it", Needed: 2, Approvers: []string{"U0BOB", "W0CAROL"}, MessageTS: "1764198000.000100",
		},
	} {
		value := key.Encode(c)
		if len(value) > 2000 {
			t.Errorf("value is %d characters, over Slack's 2,000", len(value))
		}
		got, err := key.Decode(value)
		if err != nil {
			t.Fatalf("Decode(%q): %v", value, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("Decode(Encode()) = %+v, want %+v", got, c)
		}
	}
}

// TestConfirmation_RefusesWhatIsNotSigned: every change to a value, a value
// signed with another key and the unsigned values of earlier versions are
// refused, each as ErrBadValue.
func TestConfirmation_RefusesWhatIsNotSigned(t *testing.T) {
	key := commands.DeriveKey("xapp-1-test")
	c := commands.Confirmation{
		Account: "default", Region: "us-east-1", DeploymentID: "d-LGUMS25CC", Rollback: true,
		RequesterID: "U0ALICE", ChannelID: "C0DEPLOYS", ExpiresAt: time.Date(2026, 11, 26, 23, 9, 0, 0, time.UTC),
		Rule: "production", Needed: 2, Approvers: []string{"U0BOB"},
	}
	value := key.Encode(c)
	body, sig, _ := strings.Cut(value[:strings.LastIndexByte(value, ' ')], "\x00")
	sig = value[strings.LastIndexByte(value, ' ')+1:]
	swap := func(old, new string) string { return strings.Replace(body, old, new, 1) + " " + sig }
	other, err := commands.NewKey([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, value string }{
		{"empty", ""},
		{"v1", "v1 d-LGUMS25CC rollback U0ALICE 1795734540"},
		{"v2", "v2 d-LGUMS25CC rollback U0ALICE C0DEPLOYS 1795734540"},
		{"expiry moved", swap("1795734540", "1795738140")},
		{"approver added", swap("U0BOB", "U0BOB,U0CAROL")},
		{"approvals lowered", swap(" 2 U0BOB", " 1 U0BOB")},
		{"deployment changed", swap("d-LGUMS25CC", "d-AB12CD34E")},
		{"channel changed", swap("C0DEPLOYS", "C0RANDOM")},
		{"rule changed", swap("production", "staging")},
		{"account changed", swap("default", "prod")},
		{"region changed", swap("us-east-1", "eu-west-1")},
		{"rollback changed", swap(" rollback ", " no-rollback ")},
		{"signature cut", value[:len(value)-1]},
		{"no signature", body},
		{"other key", other.Encode(c)},
		{"zero key signs nothing", commands.Key{}.Encode(c)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := key.Decode(tt.value)
			if !errors.Is(err, commands.ErrBadValue) {
				t.Errorf("Decode(%q) = %+v, %v; want ErrBadValue", tt.value, got, err)
			}
		})
	}
	if _, err := (commands.Key{}).Decode(value); !errors.Is(err, commands.ErrBadValue) {
		t.Errorf("the zero key verified a value: %v", err)
	}
}

// TestConfirmation_RefusesBadFieldsEvenSigned: the fields are checked as
// strictly as user input even under a good signature.
func TestConfirmation_RefusesBadFieldsEvenSigned(t *testing.T) {
	key := commands.DeriveKey("xapp-1-test")
	good := commands.Confirmation{
		Account: "default", Region: "us-east-1", DeploymentID: "d-LGUMS25CC",
		RequesterID: "U0ALICE", ChannelID: "C0DEPLOYS", ExpiresAt: time.Date(2026, 11, 26, 23, 9, 0, 0, time.UTC), Rule: "r",
	}
	for _, tt := range []struct {
		name   string
		change func(*commands.Confirmation)
	}{
		{"lower-case ID", func(c *commands.Confirmation) { c.DeploymentID = "d-lgums25cc" }},
		{"requester a name", func(c *commands.Confirmation) { c.RequesterID = "alice" }},
		{"channel a name", func(c *commands.Confirmation) { c.ChannelID = "deploys" }},
		{"channel a user", func(c *commands.Confirmation) { c.ChannelID = "U0BOB" }},
		{"no region", func(c *commands.Confirmation) { c.Region = "" }},
		{"account with a space", func(c *commands.Confirmation) { c.Account = "a b" }},
		{"no rule", func(c *commands.Confirmation) { c.Rule = "" }},
		{"negative approvals", func(c *commands.Confirmation) { c.Needed = -1 }},
		{"requester approves", func(c *commands.Confirmation) { c.Approvers = []string{"U0ALICE"} }},
		{"approver twice", func(c *commands.Confirmation) { c.Approvers = []string{"U0BOB", "U0BOB"} }},
		{"expiry before 1970", func(c *commands.Confirmation) { c.ExpiresAt = time.Unix(-5, 0) }},
		{"bad message", func(c *commands.Confirmation) { c.MessageTS = "soon" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.change(&c)
			if got, err := key.Decode(key.Encode(c)); !errors.Is(err, commands.ErrBadValue) {
				t.Errorf("Decode = %+v, %v; want ErrBadValue", got, err)
			}
		})
	}
	if _, err := commands.NewKey([]byte("short")); err == nil {
		t.Error("NewKey accepted a 5-byte secret")
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
		if req.DeploymentID != "" && !commands.ValidDeploymentID(req.DeploymentID) {
			t.Fatalf("Parse(%q) accepted non-canonical ID %q", text, req.DeploymentID)
		}
		if req.DeploymentID == "" && !req.List && (req.Application == "" || req.Group == "") {
			t.Fatalf("Parse(%q) = %+v: neither a deployment, a group nor a list", text, req)
		}
		_, args, _ := strings.Cut(req.Command(), " ")
		want := req
		want.Region = "" // the command text is the ID alone
		if again, err := commands.Parse(args); err != nil || again != want {
			t.Fatalf("Parse(%q) = %+v, but its command text parses to %+v, %v", text, req, again, err)
		}
	})
}

// FuzzDecodeConfirmation checks that a decoded value encodes to exactly the
// same string: there is one way to write each confirmation. The fuzzer
// writes the fields and the test signs them, or nothing would verify.
func FuzzDecodeConfirmation(f *testing.F) {
	for _, seed := range []string{
		"v3 default us-east-1 d-LGUMS25CC rollback U0ALICE C0DEPLOYS 1795734540 allowed%20list 0 - -",
		"v3 prod eu-west-1 d-AB12CD34E no-rollback W0BOB G0PRIVATE 1 production 2 U0CAROL,U0DAN 1795734000.000100",
		"v3 prod eu-west-1 d-AB12CD34E no-rollback W0BOB G0PRIVATE +1 production 02 U0CAROL -",
	} {
		f.Add(seed)
	}
	key := commands.DeriveKey("xapp-1-fuzz")
	f.Fuzz(func(t *testing.T, body string) {
		value := body + " " + signed(key, body)
		c, err := key.Decode(value)
		if err != nil {
			return
		}
		if got := key.Encode(c); got != value {
			t.Fatalf("Decode(%q) re-encodes as %q", value, got)
		}
	})
}

// signed is the signature Encode would append to body.
func signed(key commands.Key, body string) string { return commands.SignatureForTest(key, body) }
