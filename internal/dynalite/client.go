package dynalite

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Region is the region Client configures; dynalite puts it in table ARNs only when its
// own AWS_REGION says so, and checks neither.
const Region = "us-east-1"

// Config loads the SDK's default config, as main.go does, with dummy static credentials
// and Region, so no shared file, IMDS or SSO is consulted for them. dynalite accepts any
// SigV4 signature. The endpoint comes from optFns or the environment (AWS_ENDPOINT_URL_DYNAMODB).
func Config(tb testing.TB, optFns ...func(*config.LoadOptions) error) aws.Config {
	tb.Helper()
	base := []func(*config.LoadOptions) error{
		config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDDYNALITE", "dynalite-secret", "")),
	}
	cfg, err := config.LoadDefaultConfig(tb.Context(), append(base, optFns...)...)
	if err != nil {
		tb.Fatalf("config.LoadDefaultConfig: %v", err)
	}
	return cfg
}

// Client is a real DynamoDB client for this server: Config with BaseEndpoint set to
// Endpoint (which wins over AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL).
func (s *Server) Client(tb testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	tb.Helper()
	base := func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(s.Endpoint()) }
	return dynamodb.NewFromConfig(Config(tb), append([]func(*dynamodb.Options){base}, optFns...)...)
}
