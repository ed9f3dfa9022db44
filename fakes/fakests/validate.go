package fakests

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// AssumeRole parameter constraints, from the STS model (boto/botocore
// botocore/data/sts/2011-06-15/service-2.json):
//
//	arnType:                 min 20, max 2048, pattern [\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+
//	roleSessionNameType:     min 2, max 64, pattern [\w+=,.@-]*
//	roleDurationSecondsType: min 900, max 43200 (integer)
//
// RoleArn and RoleSessionName are required. The API reference adds:
// DurationSeconds defaults to 3600, may not exceed the role's
// MaxSessionDuration (1–12 h), and role chaining limits it to one hour.
const (
	minRoleARNLen     = 20
	maxRoleARNLen     = 2048
	minSessionNameLen = 2
	maxSessionNameLen = 64
	minDuration       = 900
	maxDuration       = 43200
	defaultDuration   = 3600
	chainedMaxSeconds = 3600

	// The patterns as STS quotes them in its messages.
	roleARNPattern     = `[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+`
	sessionNamePattern = `[\w+=,.@-]*`
)

var (
	roleARNChars     = regexp.MustCompile(`^[\t\n\r\x{20}-\x{7E}\x{85}\x{A0}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}]+$`)
	sessionNameChars = regexp.MustCompile(`^[\w+=,.@-]*$`)
	// arnRE is the generic ARN shape; a RoleArn that passes the model's
	// constraints but is not an ARN at all is answered "<value> is invalid".
	arnRE = regexp.MustCompile(`^arn:[^:]+:[^:]+:[^:]*:[^:]*:.+$`)
)

// Validation messages follow the real service's shape (quoted in user
// reports, e.g. "1 validation error detected: Value 'pic-ro- 6…' at
// 'roleSessionName' failed to satisfy constraint: Member must satisfy
// regular expression pattern: [\w+=,.@-]* (Service: AWSSecurityTokenService;
// Status Code: 400; Error Code: ValidationError …)"): one clause per broken
// constraint, pattern before length, joined with "; " and counted.

func violation(value *string, member, constraint string) string {
	v := "null"
	if value != nil {
		v = "'" + *value + "'"
	}
	return fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: Member %s", v, member, constraint)
}

func validationMessage(vs []string) string {
	if len(vs) == 1 {
		return "1 validation error detected: " + vs[0]
	}
	return fmt.Sprintf("%d validation errors detected: %s", len(vs), strings.Join(vs, "; "))
}

// assumeRoleInput is AssumeRole's parsed form.
type assumeRoleInput struct {
	roleARN, session string
	duration         int  // seconds; defaultDuration when absent
	durationSent     bool // DurationSeconds was present
}

// first returns the first value of key: with repeated keys STS uses the first.
func first(form url.Values, key string) (*string, bool) {
	vs, ok := form[key]
	if !ok || len(vs) == 0 {
		return nil, false
	}
	return &vs[0], true
}

// parseAssumeRole reads and validates AssumeRole's fields. c receives what
// was sent even when the request is rejected.
func parseAssumeRole(form url.Values, c *Call) (assumeRoleInput, *apiError) {
	in := assumeRoleInput{duration: defaultDuration}
	arn, _ := first(form, "RoleArn")
	session, _ := first(form, "RoleSessionName")
	dur, durSent := first(form, "DurationSeconds")
	if arn != nil {
		in.roleARN = *arn
		c.RoleARN = *arn
	}
	if session != nil {
		in.session = *session
		c.RoleSessionName = *session
	}

	// A DurationSeconds that is not a 32-bit integer fails to parse before
	// any constraint is checked: MalformedInput. ("+900" and "0900" parse.)
	if durSent {
		n, err := strconv.ParseInt(*dur, 10, 32)
		if err != nil {
			msg := fmt.Sprintf("Invalid value for DurationSeconds: '%s'", *dur)
			if *dur == "" {
				msg = "missing value for decimal type"
			}
			return in, errorf(400, CodeMalformedInput, "%s", msg)
		}
		in.duration, in.durationSent = int(n), true
		c.DurationSeconds = int(n)
	}

	var vs []string
	switch {
	case arn == nil:
		vs = append(vs, violation(nil, "roleArn", "must not be null"))
	default:
		if !roleARNChars.MatchString(*arn) {
			vs = append(vs, violation(arn, "roleArn", "must satisfy regular expression pattern: "+roleARNPattern))
		}
		if n := utf8.RuneCountInString(*arn); n < minRoleARNLen {
			vs = append(vs, violation(arn, "roleArn", fmt.Sprintf("must have length greater than or equal to %d", minRoleARNLen)))
		} else if n > maxRoleARNLen {
			vs = append(vs, violation(arn, "roleArn", fmt.Sprintf("must have length less than or equal to %d", maxRoleARNLen)))
		}
	}
	switch {
	case session == nil:
		vs = append(vs, violation(nil, "roleSessionName", "must not be null"))
	default:
		if !sessionNameChars.MatchString(*session) {
			vs = append(vs, violation(session, "roleSessionName", "must satisfy regular expression pattern: "+sessionNamePattern))
		}
		if n := utf8.RuneCountInString(*session); n < minSessionNameLen {
			vs = append(vs, violation(session, "roleSessionName", fmt.Sprintf("must have length greater than or equal to %d", minSessionNameLen)))
		} else if n > maxSessionNameLen {
			vs = append(vs, violation(session, "roleSessionName", fmt.Sprintf("must have length less than or equal to %d", maxSessionNameLen)))
		}
	}
	if in.durationSent {
		if in.duration < minDuration {
			vs = append(vs, violation(dur, "durationSeconds", fmt.Sprintf("must have value greater than or equal to %d", minDuration)))
		} else if in.duration > maxDuration {
			vs = append(vs, violation(dur, "durationSeconds", fmt.Sprintf("must have value less than or equal to %d", maxDuration)))
		}
	}
	if len(vs) > 0 {
		return in, errorf(400, CodeValidationError, "%s", validationMessage(vs))
	}
	if !arnRE.MatchString(in.roleARN) {
		return in, errorf(400, CodeValidationError, "%s is invalid", in.roleARN)
	}
	return in, nil
}

// checkDuration applies the session-duration limits that depend on the role
// and the caller, after the role is known.
func checkDuration(in assumeRoleInput, r *role, who caller) *apiError {
	// "if you assume a role using role chaining and provide a DurationSeconds
	// parameter value greater than one hour, the operation fails"
	// (AssumeRole API reference). Checked with the default too.
	if who.chained && in.duration > chainedMaxSeconds {
		return errorf(400, CodeValidationError, "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}
	if in.duration > int(r.MaxSessionDuration.Seconds()) {
		return errorf(400, CodeValidationError, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	return nil
}
