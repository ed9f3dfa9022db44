package deploy

import (
	"fmt"
	"io"
	"net/http"
)

// MaxAnswerBytes bounds one CodeDeploy answer. Real answers for the calls the
// bot makes are a few KiB (a deployment's description is at most 100
// characters in the API model); a bigger one is a fault, and reading it
// whole would cost the bot its memory (64 MiB took it from 21 to 217 MiB).
const MaxAnswerBytes = 1 << 20

// AnswerTooLargeError is a CodeDeploy answer cut off at MaxAnswerBytes.
type AnswerTooLargeError struct{ Limit int64 }

func (e *AnswerTooLargeError) Error() string {
	return fmt.Sprintf("CodeDeploy answer is larger than %d bytes", e.Limit)
}

// HTTPClient is the SDK's HTTP client interface (aws.HTTPClient).
type HTTPClient interface {
	Do(*http.Request) (*http.Response, error)
}

// LimitAnswers wraps an HTTP client so that reading an answer body past
// limit bytes fails with *AnswerTooLargeError (which the SDK wraps in its
// deserialization error, and newError finds with errors.As).
func LimitAnswers(next HTTPClient, limit int64) HTTPClient {
	return limitedClient{next, limit}
}

type limitedClient struct {
	next  HTTPClient
	limit int64
}

func (c limitedClient) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(r)
	if err != nil {
		return resp, err
	}
	if resp.ContentLength > c.limit {
		resp.Body.Close()
		return nil, &AnswerTooLargeError{c.limit}
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: c.limit, limit: c.limit}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left  int64
	limit int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, &AnswerTooLargeError{b.limit}
	}
	// Read one byte past the limit to tell "exactly the limit" from "more".
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, &AnswerTooLargeError{b.limit}
	}
	return n, err
}
