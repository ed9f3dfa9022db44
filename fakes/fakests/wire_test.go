package fakests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// rawRequest builds a POST / with a form body, signed with SigV4 for
// service (unless service is ""), then lets edit change it.
func rawRequest(t *testing.T, s *Server, service, body string, edit func(*http.Request)) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, s.URL()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if service != "" {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: baseKeyID, SecretAccessKey: "BASESECRET"}
		if err := v4.NewSigner().SignHTTP(ctxT(t), creds, req, hex.EncodeToString(sum[:]), service, testRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		edit(req)
	}
	return req
}

type rawAnswer struct {
	status int
	header http.Header
	body   string
	err    struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		Xmlns   string   `xml:"xmlns,attr"`
		Type    string   `xml:"Error>Type"`
		Code    string   `xml:"Error>Code"`
		Message string   `xml:"Error>Message"`
		ReqID   string   `xml:"RequestId"`
	}
}

func send(t *testing.T, req *http.Request) rawAnswer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := rawAnswer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if got := resp.Header.Get("Content-Type"); got != "text/xml" {
		t.Errorf("Content-Type = %q", got)
	}
	if resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Error("no x-amzn-RequestId header")
	}
	if resp.StatusCode >= 300 {
		if err := xml.Unmarshal(b, &a.err); err != nil {
			t.Fatalf("error body %q: %v", b, err)
		}
		if a.err.Xmlns != Namespace || a.err.ReqID != resp.Header.Get("X-Amzn-Requestid") {
			t.Errorf("error envelope: xmlns %q, RequestId %q vs header %q", a.err.Xmlns, a.err.ReqID, resp.Header.Get("X-Amzn-Requestid"))
		}
		wantType := "Sender"
		if resp.StatusCode >= 500 {
			wantType = "Receiver"
		}
		if a.err.Type != wantType {
			t.Errorf("<Type> = %q, want %q", a.err.Type, wantType)
		}
	}
	return a
}

const assumeBody = "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A210987654321%3Arole%2Fstopdeploy-stop&RoleSessionName=raw&Version=2011-06-15"

func TestRawWire(t *testing.T) {
	cases := []struct {
		name    string
		service string // signing service; "" leaves the request unsigned
		body    string
		edit    func(*http.Request)
		status  int
		code    string // "" means success
		msg     string // checked when not ""
	}{
		{name: "success", service: "sts", body: assumeBody, status: 200},
		{name: "no Authorization", body: assumeBody, status: 403, code: "MissingAuthenticationToken"},
		{name: "scoped to another service", service: "codedeploy", body: assumeBody, status: 403, code: "SignatureDoesNotMatch",
			msg: "Credential should be scoped to correct service: 'sts'. "},
		{name: "no X-Amz-Date", service: "sts", body: assumeBody, edit: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, status: 400, code: "IncompleteSignature"},
		{name: "not SigV4", service: "sts", body: assumeBody, edit: func(r *http.Request) { r.Header.Set("Authorization", "AWS AKID:sig") }, status: 400, code: "IncompleteSignature"},
		{name: "JSON body", service: "sts", body: assumeBody, edit: func(r *http.Request) { r.Header.Set("Content-Type", "application/x-amz-json-1.1") }, status: 400, code: "MissingAction"},
		{name: "GET", service: "sts", body: "", edit: func(r *http.Request) { r.Method = http.MethodGet }, status: 405, code: "MethodNotAllowed"},
		{name: "no Action", service: "sts", body: "Version=2011-06-15", status: 400, code: "MissingAction"},
		{name: "unknown action", service: "sts", body: "Action=DeleteRole&Version=2011-06-15", status: 400, code: CodeInvalidAction,
			msg: "Could not find operation DeleteRole for version 2011-06-15"},
		{name: "other version", service: "sts", body: "Action=AssumeRole&Version=2010-05-08", status: 400, code: CodeInvalidAction,
			msg: "Could not find operation AssumeRole for version 2010-05-08"},
		{name: "no Version", service: "sts", body: "Action=GetCallerIdentity", status: 400, code: CodeInvalidAction,
			msg: "Could not find operation GetCallerIdentity for version NO_VERSION_SPECIFIED"},
		{name: "first Action wins", service: "sts", body: "Action=GetCallerIdentity&Action=Nope&Version=2011-06-15", status: 200},
		{name: "no RoleSessionName", service: "sts", body: strings.Replace(assumeBody, "&RoleSessionName=raw", "", 1), status: 400, code: CodeValidationError,
			msg: "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"},
		{name: "nothing but Action", service: "sts", body: "Action=AssumeRole&Version=2011-06-15", status: 400, code: CodeValidationError,
			msg: "2 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"},
		{name: "empty RoleArn", service: "sts", body: "Action=AssumeRole&RoleArn=&RoleSessionName=raw&Version=2011-06-15", status: 400, code: CodeValidationError,
			msg: `2 validation errors detected: Value '' at 'roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+; Value '' at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20`},
		{name: "DurationSeconds not a number", service: "sts", body: assumeBody + "&DurationSeconds=abc", status: 400, code: CodeMalformedInput},
		{name: "DurationSeconds empty", service: "sts", body: assumeBody + "&DurationSeconds=", status: 400, code: CodeMalformedInput,
			msg: "missing value for decimal type"},
		{name: "DurationSeconds over int32", service: "sts", body: assumeBody + "&DurationSeconds=2147483648", status: 400, code: CodeMalformedInput},
		{name: "DurationSeconds int32 max", service: "sts", body: assumeBody + "&DurationSeconds=2147483647", status: 400, code: CodeValidationError,
			msg: "1 validation error detected: Value '2147483647' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"},
		{name: "DurationSeconds +900", service: "sts", body: assumeBody + "&DurationSeconds=%2B900", status: 200},
		{name: "DurationSeconds 0900", service: "sts", body: assumeBody + "&DurationSeconds=0900", status: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Options{})
			s.AddRole(prodRole)
			a := send(t, rawRequest(t, s, tc.service, tc.body, tc.edit))
			if a.status != tc.status {
				t.Fatalf("status = %d, want %d\n%s", a.status, tc.status, a.body)
			}
			if tc.code == "" {
				return
			}
			if a.err.Code != tc.code || (tc.msg != "" && a.err.Message != tc.msg) {
				t.Errorf("error = %s: %q\nwant    %s: %q", a.err.Code, a.err.Message, tc.code, tc.msg)
			}
			if calls := s.Calls(); len(calls) != 1 || calls[0].Result != tc.code {
				t.Errorf("calls = %v", calls)
			}
		})
	}
}

func TestRawSuccessXML(t *testing.T) {
	var log issuedLog
	s := newServer(t, Options{Now: func() time.Time { return t0 }, OnIssue: log.add})
	s.AddRole(prodRole)

	a := send(t, rawRequest(t, s, "sts", assumeBody+"&DurationSeconds=900", nil))
	var ar struct {
		XMLName       xml.Name `xml:"AssumeRoleResponse"`
		Xmlns         string   `xml:"xmlns,attr"`
		AssumedRoleID string   `xml:"AssumeRoleResult>AssumedRoleUser>AssumedRoleId"`
		Arn           string   `xml:"AssumeRoleResult>AssumedRoleUser>Arn"`
		AccessKeyID   string   `xml:"AssumeRoleResult>Credentials>AccessKeyId"`
		Secret        string   `xml:"AssumeRoleResult>Credentials>SecretAccessKey"`
		Token         string   `xml:"AssumeRoleResult>Credentials>SessionToken"`
		Expiration    string   `xml:"AssumeRoleResult>Credentials>Expiration"`
		RequestID     string   `xml:"ResponseMetadata>RequestId"`
	}
	if err := xml.Unmarshal([]byte(a.body), &ar); err != nil {
		t.Fatalf("%v\n%s", err, a.body)
	}
	got := log.list()
	if len(got) != 1 {
		t.Fatalf("OnIssue called %d times", len(got))
	}
	i := got[0]
	if ar.Xmlns != Namespace || ar.Arn != i.AssumedRoleARN || ar.AssumedRoleID != i.AssumedRoleID ||
		ar.AccessKeyID != i.AccessKeyID || ar.Secret != i.SecretAccessKey || ar.Token != i.SessionToken ||
		ar.Expiration != "2026-12-01T10:30:00Z" || ar.RequestID != a.header.Get("X-Amzn-Requestid") {
		t.Errorf("AssumeRoleResponse:\n%s\nissued %#v", a.body, i)
	}

	a = send(t, rawRequest(t, s, "sts", "Action=GetCallerIdentity&Version=2011-06-15", nil))
	want := "<GetCallerIdentityResponse xmlns=\"" + Namespace + "\">\n" +
		"  <GetCallerIdentityResult>\n" +
		"    <Arn>" + DefaultCallerARN + "</Arn>\n"
	if !strings.HasPrefix(a.body, want) || !strings.Contains(a.body, "<Account>123456789012</Account>") ||
		!strings.Contains(a.body, "<ResponseMetadata>\n    <RequestId>"+a.header.Get("X-Amzn-Requestid")+"</RequestId>") {
		t.Errorf("GetCallerIdentity body:\n%s", a.body)
	}
}

func TestRawErrorXML(t *testing.T) {
	s := newServer(t, Options{})
	a := send(t, rawRequest(t, s, "sts", assumeBody, nil))
	want := "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n" +
		"  <Error>\n" +
		"    <Type>Sender</Type>\n" +
		"    <Code>AccessDenied</Code>\n" +
		"    <Message>User: arn:aws:iam::123456789012:user/stopdeploy is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::210987654321:role/stopdeploy-stop</Message>\n" +
		"  </Error>\n" +
		"  <RequestId>" + a.header.Get("X-Amzn-Requestid") + "</RequestId>\n" +
		"</ErrorResponse>\n"
	if a.status != 403 || a.body != want {
		t.Errorf("status %d, body:\n%s\nwant:\n%s", a.status, a.body, want)
	}
}
