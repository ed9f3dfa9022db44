package deploy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Kind sorts CodeDeploy failures by what the user should be told.
type Kind int

const (
	KindOther            Kind = iota // anything not listed below
	KindNotFound                     // DeploymentDoesNotExistException
	KindInvalidID                    // InvalidDeploymentIdException
	KindAlreadyCompleted             // DeploymentAlreadyCompletedException
	KindGroupNotFound                // DeploymentGroupDoesNotExistException
	KindIDRequired                   // DeploymentIdRequiredException
	KindUnsupported                  // UnsupportedActionForDeploymentTypeException
	KindThrottled                    // throttling that outlasted the SDK's retries
	KindAccessDenied                 // credentials or IAM policy refused the call
	KindUnreachable                  // no answer from CodeDeploy: network failure
	KindCanceled                     // the bot gave up (timeout or shutdown)
	KindTooLarge                     // the answer was over MaxAnswerBytes
	KindUnknownPlace                 // Places has no such account and region
)

var kindNames = [...]string{"other", "not_found", "invalid_id", "already_completed", "group_not_found",
	"id_required", "unsupported", "throttled", "access_denied", "unreachable", "canceled", "too_large", "unknown_place"}

// String is the kind's name in logs and metrics.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a failed CodeDeploy call.
type Error struct {
	Kind         Kind
	Op           string // "GetDeployment", "StopDeployment", "ListDeployments" or "BatchGetDeployments"
	Place        Place  // where the call went; zero for a Client made by NewClient
	DeploymentID string // empty for ListDeployments
	Code         string // the AWS error code, when CodeDeploy answered
	Err          error
}

func (e *Error) Error() string {
	subject := e.DeploymentID
	if e.Place != (Place{}) {
		subject = strings.TrimSpace(e.Place.String() + " " + e.DeploymentID)
	}
	return fmt.Sprintf("%s %s: %s: %v", e.Op, subject, e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Explain says in plain words what happened, for the people in the channel.
func (e *Error) Explain() string {
	id := "`" + e.DeploymentID + "`"
	stopping := e.Op == "StopDeployment"
	var ce *CredentialsError
	if errors.As(e.Err, &ce) {
		// Nothing reached CodeDeploy.
		what := "could not read " + id
		if stopping {
			what = "did *not* stop " + id
		}
		return fmt.Sprintf("The bot could not assume the role %s for %s, so it %s (%s). Ask your platform team to check the role's trust policy and the bot's sts:AssumeRole permission.",
			mrkdwn(ce.RoleARN), mrkdwn(e.Place.String()), what, mrkdwn(cmp.Or(e.Code, ce.Err.Error())))
	}
	switch e.Kind {
	case KindNotFound:
		if e.Place != (Place{}) {
			return fmt.Sprintf("CodeDeploy has no deployment %s in %s.", id, mrkdwn(e.Place.String()))
		}
		return fmt.Sprintf("CodeDeploy has no deployment %s in the AWS account and region this bot uses.", id)
	case KindUnknownPlace:
		return fmt.Sprintf("The bot has no AWS account and region %s configured.", mrkdwn(e.Place.String()))
	case KindInvalidID:
		return fmt.Sprintf("CodeDeploy says %s is not a valid deployment ID.", id)
	case KindAlreadyCompleted:
		return fmt.Sprintf("Deployment %s had already completed, so there was nothing to stop.", id)
	case KindGroupNotFound:
		return fmt.Sprintf("The deployment group of %s no longer exists, so CodeDeploy cannot stop it.", id)
	case KindIDRequired:
		return "No deployment ID reached CodeDeploy. This is a bug in stopdeploy; please report it."
	case KindUnsupported:
		return fmt.Sprintf("CodeDeploy cannot stop %s: its deployment type does not support this action.", id)
	case KindThrottled:
		if stopping {
			return fmt.Sprintf("AWS kept throttling the request, even after retries. %s was *not* stopped: try again in a minute, or stop it in the AWS console.", id)
		}
		return "AWS kept throttling the request, even after retries. Try again in a minute."
	case KindAccessDenied:
		return fmt.Sprintf("AWS refused the bot's credentials for %s on %s (%s). Ask your platform team to check the bot's IAM policy.", e.Op, id, mrkdwn(e.Code))
	case KindUnreachable:
		if stopping {
			return fmt.Sprintf("The bot could not reach CodeDeploy (network failure), so it does not know whether %s was stopped. Check the AWS console.", id)
		}
		return "The bot could not reach CodeDeploy (network failure). Try again in a minute."
	case KindTooLarge:
		if stopping {
			return fmt.Sprintf("CodeDeploy's answer about %s was over %d KiB, so the bot did not read it and does not know whether it was stopped.", id, MaxAnswerBytes>>10)
		}
		return fmt.Sprintf("CodeDeploy's answer about %s was over %d KiB, so the bot did not read it.", id, MaxAnswerBytes>>10)
	case KindCanceled:
		if stopping {
			return fmt.Sprintf("The bot gave up waiting for CodeDeploy, so it does not know whether %s was stopped. Check the AWS console.", id)
		}
		return "The bot gave up waiting for CodeDeploy. Try again in a minute."
	}
	if e.Code != "" {
		var api smithy.APIError
		if errors.As(e.Err, &api) {
			return fmt.Sprintf("CodeDeploy answered %s on %s: %s", mrkdwn(e.Code), id, mrkdwn(api.ErrorMessage()))
		}
	}
	if e.Unknown() && stopping {
		return fmt.Sprintf("CodeDeploy's answer could not be read (%s), so the bot does not know whether %s was stopped.", mrkdwn(e.Err.Error()), id)
	}
	return fmt.Sprintf("The CodeDeploy call for %s failed: %s", id, mrkdwn(e.Err.Error()))
}

// mrkdwn makes a string from AWS safe in Slack mrkdwn (&, < and > escaped,
// as Slack requires, so "<!channel>" cannot notify anyone) and cuts it to
// 1,000 characters, well inside Slack's limits.
func mrkdwn(s string) string {
	if r := []rune(s); len(r) > 1000 {
		s = string(r[:999]) + "…"
	}
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Unknown reports whether the call may have taken effect although it
// failed: CodeDeploy may have received it and its answer was lost, cut,
// unreadable, or came too late. An exception CodeDeploy answered with
// (HTTP 4xx, a code) means it did nothing; a 5xx or no answer does not,
// and a *CredentialsError means the call was never sent.
func (e *Error) Unknown() bool {
	var ce *CredentialsError
	if errors.As(e.Err, &ce) {
		return false // no credentials, so nothing was sent
	}
	switch e.Kind {
	case KindCanceled, KindUnreachable, KindTooLarge:
		return true
	case KindOther:
		var re *smithyhttp.ResponseError
		if errors.As(e.Err, &re) && re.HTTPStatusCode() < 500 && e.Code != "" {
			return false
		}
		return true
	}
	return false
}

// accessDeniedCodes are the AWS error codes for refused credentials or
// permissions, across the signing and authorization layers.
var accessDeniedCodes = map[string]bool{
	"AccessDenied": true, "AccessDeniedException": true, "UnauthorizedOperation": true,
	"UnrecognizedClientException": true, "InvalidSignatureException": true, "SignatureDoesNotMatch": true,
	"ExpiredToken": true, "ExpiredTokenException": true, "InvalidClientTokenId": true,
	"MissingAuthenticationTokenException": true, "IncompleteSignatureException": true,
}

func newError(op string, place Place, id string, err error) *Error {
	e := &Error{Op: op, Place: place, DeploymentID: id, Err: err, Kind: KindOther}
	var api smithy.APIError
	if errors.As(err, &api) {
		e.Code = api.ErrorCode()
	}
	var (
		notFound    *types.DeploymentDoesNotExistException
		invalidID   *types.InvalidDeploymentIdException
		completed   *types.DeploymentAlreadyCompletedException
		noGroup     *types.DeploymentGroupDoesNotExistException
		idRequired  *types.DeploymentIdRequiredException
		unsupported *types.UnsupportedActionForDeploymentTypeException
		sendErr     *smithyhttp.RequestSendError
	)
	var tooLarge *AnswerTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		e.Kind = KindTooLarge
	case errors.As(err, &notFound):
		e.Kind = KindNotFound
	case errors.As(err, &invalidID):
		e.Kind = KindInvalidID
	case errors.As(err, &completed):
		e.Kind = KindAlreadyCompleted
	case errors.As(err, &noGroup):
		e.Kind = KindGroupNotFound
	case errors.As(err, &idRequired):
		e.Kind = KindIDRequired
	case errors.As(err, &unsupported):
		e.Kind = KindUnsupported
	case isThrottle(e.Code):
		e.Kind = KindThrottled
	case accessDeniedCodes[e.Code]:
		e.Kind = KindAccessDenied
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.Kind = KindCanceled
	case errors.As(err, &sendErr):
		e.Kind = KindUnreachable
	}
	return e
}

func isThrottle(code string) bool {
	_, ok := retry.DefaultThrottleErrorCodes[code]
	return ok
}
