package aws_test

import (
	"errors"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	fluxauth "github.com/fluxcd/pkg/auth"
	gcpauth "github.com/fluxcd/pkg/auth/gcp"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/aws"
)

func TestValidateToken(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	creds := func(akid, secret, session string, exp *time.Time) *aws.Credentials {
		return &aws.Credentials{Credentials: types.Credentials{
			AccessKeyId: &akid, SecretAccessKey: &secret, SessionToken: &session, Expiration: exp,
		}}
	}
	at := func(t time.Time) *time.Time { return &t }
	const prefix = "invalid AWS credentials: "
	for _, tt := range []struct {
		name    string
		token   fluxauth.Token
		wantErr string
	}{
		{name: "valid", token: creds("ASIAX", "s3cr3t", "t0ken", at(now.Add(time.Hour)))},
		{name: "just beyond the margin", token: creds("ASIAX", "s3cr3t", "t0ken", at(now.Add(aws.ExpiryMargin+1)))},
		{name: "valid in another time zone", token: creds("ASIAX", "s3cr3t", "t0ken",
			at(now.Add(time.Hour).In(time.FixedZone("UTC+9", 9*3600))))},
		{
			name:    "at the margin",
			token:   creds("ASIAX", "s3cr3t", "t0ken", at(now.Add(aws.ExpiryMargin))),
			wantErr: prefix + "Expiration 2026-05-01T10:01:00Z is not more than 1m0s after the current time 2026-05-01T10:00:00Z",
		},
		{
			name:    "expired",
			token:   creds("ASIAX", "s3cr3t", "t0ken", at(now.Add(-time.Hour))),
			wantErr: prefix + "Expiration 2026-05-01T09:00:00Z is not more than 1m0s after the current time 2026-05-01T10:00:00Z",
		},
		{
			name:    "zero expiration, as upstream sets for a missing one",
			token:   creds("ASIAX", "s3cr3t", "t0ken", &time.Time{}),
			wantErr: prefix + "Expiration is zero",
		},
		{
			name:    "missing expiration",
			token:   creds("ASIAX", "s3cr3t", "t0ken", nil),
			wantErr: prefix + "Expiration is missing",
		},
		{
			name:    "empty access key id",
			token:   creds("", "s3cr3t", "t0ken", at(now.Add(time.Hour))),
			wantErr: prefix + "AccessKeyId is empty",
		},
		{
			name:    "empty secret",
			token:   creds("ASIAX", "", "t0ken", at(now.Add(time.Hour))),
			wantErr: prefix + "SecretAccessKey is empty",
		},
		{
			name:    "long-lived access keys",
			token:   creds("AKIAX", "s3cr3t", "", &time.Time{}),
			wantErr: prefix + "SessionToken is empty; Expiration is zero",
		},
		{
			name:    "nil fields",
			token:   &aws.Credentials{},
			wantErr: prefix + "AccessKeyId is empty; SecretAccessKey is empty; SessionToken is empty; Expiration is missing",
		},
		{
			name:    "nil credentials",
			token:   (*aws.Credentials)(nil),
			wantErr: prefix + "the token is a nil *aws.Credentials",
		},
		{
			name:    "GCP token",
			token:   &gcpauth.Token{},
			wantErr: prefix + "the token is *gcp.Token, not *aws.Credentials",
		},
		{
			name:    "no token",
			token:   nil,
			wantErr: prefix + "the token is <nil>, not *aws.Credentials",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			err := aws.Provider{}.ValidateToken(tt.token, now)
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(tt.wantErr))
			g.Expect(errors.Is(err, aws.ErrInvalidCredentials)).To(BeTrue())
		})
	}
}

func TestValidateTokenNeverShowsSecrets(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	token := &aws.Credentials{Credentials: types.Credentials{
		AccessKeyId: awssdk.String("ASIASECRETKEYID"), SecretAccessKey: awssdk.String("SECRETACCESSKEY"),
		SessionToken: awssdk.String("SECRETSESSIONTOKEN"), Expiration: &time.Time{},
	}}
	err := aws.Provider{}.ValidateToken(token, time.Now())
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).NotTo(ContainSubstring("SECRET"))
}
