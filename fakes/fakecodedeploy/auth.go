package fakecodedeploy

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

const amzDate = "20060102T150405Z"

// Principal is who an access key belongs to.
type Principal struct {
	// Account is the 12-digit account; empty means Options.DefaultAccount.
	Account string
	// ARN names the principal in AccessDenied messages, e.g.
	// "arn:aws:sts::210987654321:assumed-role/stopdeploy/alice"; empty means
	// "arn:aws:iam::<Account>:user/stopdeploy".
	ARN string
	// SessionName is the role session name of assumed-role credentials,
	// recorded as Call.SessionName.
	SessionName string
	// SessionToken, if set, must arrive as the X-Amz-Security-Token header;
	// a request without it or with another token is answered
	// UnrecognizedClientException. Never logged.
	SessionToken string
}

// RegisterKey says who an access key ID belongs to; requests signed with it
// act in p's account (and see that account's deployments). A key that was
// never registered belongs to Options.DefaultAccount as
// arn:aws:iam::<account>:user/stopdeploy (the bot's own credentials). A fake
// STS registers every key it issues. Registering a key again replaces it.
func (s *Server) RegisterKey(accessKeyID string, p Principal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.Account == "" {
		p.Account = s.opts.DefaultAccount
	}
	if p.ARN == "" {
		p.ARN = userARN(p.Account)
	}
	s.keys[accessKeyID] = p
	s.notifyLocked()
}

func userARN(account string) string { return "arn:aws:iam::" + account + ":user/stopdeploy" }

// principalLocked returns the principal of an access key ID.
func (s *Server) principalLocked(keyID string) Principal {
	if p, ok := s.keys[keyID]; ok {
		return p
	}
	return Principal{Account: s.opts.DefaultAccount, ARN: userARN(s.opts.DefaultAccount)}
}

// authenticate resolves the principal of a request whose SigV4 shape passed
// checkAuth and checks its session token.
func (s *Server) authenticate(r *http.Request, keyID string) (Principal, *apiError) {
	s.mu.Lock()
	p := s.principalLocked(keyID)
	s.mu.Unlock()
	if p.SessionToken != "" && r.Header.Get("X-Amz-Security-Token") != p.SessionToken {
		// JSON 1.1 services answer a missing, expired or wrong session token
		// with HTTP 400 UnrecognizedClientException and this message, e.g.
		// DynamoDB (github.com/yegor256/s3auth/issues/244) and Cognito
		// (github.com/ArranJacques/laravel-aws-cognito-auth/issues/25).
		return p, errorf(400, "UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	return p, nil
}

// checkAuth checks the shape of SigV4 authentication (not the signature) and
// returns the credential scope's access key ID and region.
func checkAuth(r *http.Request) (keyID, region string, aerr *apiError) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return "", "", errorf(http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "", "", errorf(400, "IncompleteSignatureException", "Authorization header requires 'AWS4-HMAC-SHA256' algorithm. Authorization=%s", auth)
	}
	params := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[k] = v
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if params[k] == "" {
			return "", "", errorf(400, "IncompleteSignatureException", "Authorization header requires '%s' parameter. Authorization=%s", k, auth)
		}
	}
	scope := strings.Split(params["Credential"], "/")
	if len(scope) != 5 || scope[0] == "" || scope[2] == "" || scope[4] != "aws4_request" {
		return "", "", errorf(400, "IncompleteSignatureException", "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", params["Credential"])
	}
	if scope[3] != "codedeploy" {
		return "", "", errorf(http.StatusForbidden, "InvalidSignatureException", "Credential should be scoped to correct service: 'codedeploy'.")
	}
	if !slices.Contains(strings.Split(params["SignedHeaders"], ";"), "host") {
		return "", "", errorf(400, "IncompleteSignatureException", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	date := r.Header.Get("X-Amz-Date")
	if date == "" {
		return "", "", errorf(400, "IncompleteSignatureException", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=%s", auth)
	}
	if _, err := time.Parse(amzDate, date); err != nil {
		return "", "", errorf(400, "IncompleteSignatureException", "Date must be in ISO-8601 'basic format'. Got '%s'.", date)
	}
	if !strings.HasPrefix(date, scope[1]) || len(scope[1]) != 8 {
		return "", "", errorf(http.StatusForbidden, "InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", scope[1], safePrefix(date, 8), date)
	}
	return scope[0], scope[2], nil
}

func safePrefix(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}
