package fakes

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// AWSControllerImplementation is an AWSImplementation whose controller
// identity is set per instance: LoadDefaultConfig gives the credentials of
// one provider instead of running the SDK's default chain over the process
// environment and shared files. Tests whose controllers have different
// identities can then run in parallel, which PodIdentityEnv and IRSAEnv,
// applied with t.Setenv, forbid.
//
// AWSControllerImplementation is immutable and safe for concurrent use.
type AWSControllerImplementation struct {
	*AWSImplementation
	creds aws.CredentialsProvider
}

// ImplementationAs returns the implementation of s (see Implementation)
// whose controller identity is creds, such as
// PodIdentityAgent.Credentials or AWSSTS.WebIdentityCredentials. It panics
// when creds is nil, as a fixture without an identity cannot work.
func (s *AWSSTS) ImplementationAs(creds aws.CredentialsProvider) *AWSControllerImplementation {
	if creds == nil {
		panic("fakes: AWSSTS.ImplementationAs: creds is required")
	}
	return &AWSControllerImplementation{AWSImplementation: s.Implementation(), creds: aws.NewCredentialsCache(creds)}
}

// LoadDefaultConfig applies optFns (upstream passes the region, its HTTP
// client and an STS endpoint) to a configuration whose credentials are the
// instance's, unless optFns set their own. It reads no environment variable
// and no file.
func (i *AWSControllerImplementation) LoadDefaultConfig(_ context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	var o config.LoadOptions
	for _, fn := range optFns {
		if err := fn(&o); err != nil {
			return aws.Config{}, err
		}
	}
	cfg := aws.Config{Region: o.Region, Credentials: i.creds, HTTPClient: o.HTTPClient}
	if o.Credentials != nil {
		cfg.Credentials = o.Credentials
	}
	if o.BaseEndpoint != "" {
		cfg.BaseEndpoint = aws.String(o.BaseEndpoint)
	}
	return cfg, nil
}

// Credentials returns the provider that PodIdentityEnv sets up through the
// environment: the SDK's container credentials provider at a.URL,
// presenting the agent's authorization token.
func (a *PodIdentityAgent) Credentials() aws.CredentialsProvider {
	return endpointcreds.New(a.URL, func(o *endpointcreds.Options) {
		o.AuthorizationToken = a.token
	})
}

// WebIdentityCredentials returns the provider that IRSAEnv sets up through
// the environment: the SDK's web identity provider, calling
// AssumeRoleWithWebIdentity at s for roleARN with the token that token
// retrieves, for example stscreds.IdentityTokenFile or a token the
// TokenRequest API minted.
func (s *AWSSTS) WebIdentityCredentials(roleARN string, token stscreds.IdentityTokenRetriever) aws.CredentialsProvider {
	if token == nil {
		token = identityTokenFunc(func() ([]byte, error) {
			return nil, errors.New("fakes: AWSSTS.WebIdentityCredentials: no token retriever")
		})
	}
	// The region only completes the client: BaseEndpoint decides where the
	// unsigned call goes.
	client := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL)})
	return stscreds.NewWebIdentityRoleProvider(client, roleARN, token)
}

// identityTokenFunc adapts a function to stscreds.IdentityTokenRetriever.
type identityTokenFunc func() ([]byte, error)

func (f identityTokenFunc) GetIdentityToken() ([]byte, error) { return f() }

// StaticIdentityToken is a stscreds.IdentityTokenRetriever that returns
// token, for WebIdentityCredentials.
func StaticIdentityToken(token string) stscreds.IdentityTokenRetriever {
	return identityTokenFunc(func() ([]byte, error) { return []byte(token), nil })
}
