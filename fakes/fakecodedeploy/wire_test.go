package fakecodedeploy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
)

func TestRawWire(t *testing.T) {
	s := newServer(t, Options{})
	s.Put(Deployment{ID: "d-RAWWIRE01", Application: "a", Group: "g", CreateTime: t0})
	base := func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, s.URL()+"/", strings.NewReader(`{"deploymentId":"d-RAWWIRE01"}`))
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", "CodeDeploy_20141006.GetDeployment")
		r.Header.Set("X-Amz-Date", "20261126T225512Z")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/codedeploy/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123abcd")
		return r
	}
	body := func(s string) func(*http.Request) {
		return func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(s)); r.ContentLength = int64(len(s)) }
	}
	header := func(k, v string) func(*http.Request) {
		return func(r *http.Request) {
			if v == "" {
				r.Header.Del(k)
			} else {
				r.Header.Set(k, v)
			}
		}
	}
	cases := []struct {
		name       string
		mod        func(*http.Request)
		wantStatus int
		wantType   string
	}{
		{"ok", func(*http.Request) {}, 200, ""},
		{"unsigned", header("Authorization", ""), 403, "MissingAuthenticationTokenException"},
		{"wrong algorithm", header("Authorization", "Bearer xyz"), 400, "IncompleteSignatureException"},
		{"no signature", header("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/codedeploy/aws4_request, SignedHeaders=host"), 400, "IncompleteSignatureException"},
		{"wrong service", header("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=ab"), 403, "InvalidSignatureException"},
		{"host unsigned", header("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/codedeploy/aws4_request, SignedHeaders=x-amz-date, Signature=ab"), 400, "IncompleteSignatureException"},
		{"no date", header("X-Amz-Date", ""), 400, "IncompleteSignatureException"},
		{"date mismatch", header("X-Amz-Date", "20261127T000000Z"), 403, "InvalidSignatureException"},
		{"wrong content type", header("Content-Type", "application/json"), 400, "UnknownOperationException"},
		{"no content type", header("Content-Type", ""), 400, "UnknownOperationException"},
		{"unknown target", header("X-Amz-Target", "CodeDeploy_20141006.CreateDeployment"), 400, "UnknownOperationException"},
		{"foreign target", header("X-Amz-Target", "DynamoDB_20120810.GetItem"), 400, "UnknownOperationException"},
		{"no target", header("X-Amz-Target", ""), 400, "UnknownOperationException"},
		{"GET", func(r *http.Request) { r.Method = http.MethodGet }, 404, "UnknownOperationException"},
		{"other path", func(r *http.Request) { r.URL.Path = "/x" }, 404, "UnknownOperationException"},
		{"malformed json", body(`{"deploymentId":`), 400, "SerializationException"},
		{"wrong type", body(`{"deploymentId":5}`), 400, "SerializationException"},
		{"not an object", body(`null`), 400, "SerializationException"},
		{"empty body", body(``), 400, "SerializationException"},
		{"no id", body(`{}`), 400, "DeploymentIdRequiredException"},
		{"stop no id", func(r *http.Request) {
			header("X-Amz-Target", "CodeDeploy_20141006.StopDeployment")(r)
			body(`{"autoRollbackEnabled":true}`)(r)
		}, 400, "DeploymentIdRequiredException"},
		{"batch ids not a list", func(r *http.Request) {
			header("X-Amz-Target", "CodeDeploy_20141006.BatchGetDeployments")(r)
			body(`{"deploymentIds":"d-RAWWIRE01"}`)(r)
		}, 400, "SerializationException"},
		{"list statuses not a list", func(r *http.Request) {
			header("X-Amz-Target", "CodeDeploy_20141006.ListDeployments")(r)
			body(`{"includeOnlyStatuses":"InProgress"}`)(r)
		}, 400, "SerializationException"},
		{"list time range not numbers", func(r *http.Request) {
			header("X-Amz-Target", "CodeDeploy_20141006.ListDeployments")(r)
			body(`{"createTimeRange":{"start":"2026-11-26T00:00:00Z"}}`)(r)
		}, 400, "SerializationException"},
	}
	uuidRE := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			tc.mod(r)
			resp, err := http.DefaultClient.Do(r.WithContext(ctxT(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d: %s", resp.StatusCode, tc.wantStatus, raw)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
				t.Errorf("Content-Type = %q", ct)
			}
			if rid := resp.Header.Get("X-Amzn-Requestid"); !uuidRE.MatchString(rid) {
				t.Errorf("X-Amzn-Requestid = %q", rid)
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("body %q: %v", raw, err)
			}
			if tc.wantType != "" {
				if m["__type"] != tc.wantType {
					t.Errorf("__type = %v, want %s (%s)", m["__type"], tc.wantType, raw)
				}
				return
			}
			info := m["deploymentInfo"].(map[string]any)
			ov := info["deploymentOverview"].(map[string]any)
			for _, k := range []string{"Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Ready"} {
				if _, ok := ov[k].(json.Number); !ok {
					t.Errorf("deploymentOverview.%s = %v", k, ov[k])
				}
			}
			if n, ok := info["createTime"].(json.Number); !ok || n.String() != strconv.FormatInt(t0.Unix(), 10)+".123" {
				t.Errorf("createTime = %#v", info["createTime"])
			}
			for _, absent := range []string{"completeTime", "rollbackInfo", "errorInformation", "description"} {
				if _, ok := info[absent]; ok {
					t.Errorf("%s present for a running deployment", absent)
				}
			}
		})
	}
	if n := s.Count(OpGetDeployment, "d-RAWWIRE01"); n != 1 {
		t.Errorf("accepted GetDeployment calls = %d, want 1", n)
	}
}

func TestEnvironmentEndpoint(t *testing.T) {
	s := newServer(t, Options{})
	// The request's region comes from AWS_REGION through the credential scope.
	id := s.Put(Deployment{Region: "eu-west-1", Application: "a", Group: "g"})
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_CODEDEPLOY", s.URL())
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SECRETENV")
	t.Setenv("AWS_PROFILE", "")
	cfg, err := config.LoadDefaultConfig(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	c := codedeploy.NewFromConfig(cfg)
	if info := get(t, c, id); aws.ToString(info.DeploymentId) != id {
		t.Errorf("got %v", aws.ToString(info.DeploymentId))
	}
	stop(t, c, id, aws.Bool(false))
	if got := s.Count("", id); got != 2 {
		t.Errorf("calls = %d", got)
	}
	for _, c := range s.Calls() {
		if c.Account != DefaultAccount || c.Region != "eu-west-1" || c.AccessKeyID != "AKIDENV" {
			t.Errorf("call %v acted in %s/%s as %s", c, c.Account, c.Region, c.AccessKeyID)
		}
	}
}
