package fakecodedeploy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"
)

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newClient(t *testing.T, s *Server, fns ...func(*codedeploy.Options)) *codedeploy.Client {
	t.Helper()
	return newClientAs(t, s, signer{}, fns...)
}

// signer is who a test client signs as: access key ID (default "AKID"),
// session token and region (default "us-east-1").
type signer struct{ key, token, region string }

const testSecret = "SECRET-ACCESS-KEY-never-sent"

func newClientAs(t *testing.T, s *Server, as signer, fns ...func(*codedeploy.Options)) *codedeploy.Client {
	t.Helper()
	if as.key == "" {
		as.key = "AKID"
	}
	if as.region == "" {
		as.region = "us-east-1"
	}
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(as.region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(as.key, testSecret, as.token)))
	if err != nil {
		t.Fatal(err)
	}
	fns = append([]func(*codedeploy.Options){func(o *codedeploy.Options) { o.BaseEndpoint = aws.String(s.URL()) }}, fns...)
	return codedeploy.NewFromConfig(cfg, fns...)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func oneAttempt(o *codedeploy.Options) { o.RetryMaxAttempts = 1 }

func get(t *testing.T, c *codedeploy.Client, id string) *types.DeploymentInfo {
	t.Helper()
	out, err := c.GetDeployment(ctxT(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		t.Fatalf("GetDeployment %s: %v", id, err)
	}
	return out.DeploymentInfo
}

func stop(t *testing.T, c *codedeploy.Client, id string, rollback *bool) *codedeploy.StopDeploymentOutput {
	t.Helper()
	out, err := c.StopDeployment(ctxT(t), &codedeploy.StopDeploymentInput{DeploymentId: aws.String(id), AutoRollbackEnabled: rollback})
	if err != nil {
		t.Fatalf("StopDeployment %s: %v", id, err)
	}
	return out
}

func isErr[T error](err error) bool {
	var e T
	return errors.As(err, &e)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 11, 26, 22, 55, 12, 123_000_000, time.UTC)

// rawCall sends one hand-made, validly shaped request and returns the status
// and the raw body.
func rawCall(t *testing.T, s *Server, op, body string) (int, []byte) {
	t.Helper()
	r, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, s.URL()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", TargetPrefix+op)
	r.Header.Set("X-Amz-Date", "20261126T225512Z")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/codedeploy/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123abcd")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// apiErr returns the error code and message of an API error ("" if err is not one).
func apiErr(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", ""
}

// httpStatus returns the HTTP status of a failed call (0 if none arrived).
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
