package aws

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	. "github.com/onsi/gomega"
)

func TestSTSReplyGuard(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	exp := now.Add(time.Hour)
	good := func() *types.Credentials {
		return &types.Credentials{
			AccessKeyId: aws.String("ASIAX"), SecretAccessKey: aws.String("SECRET"),
			SessionToken: aws.String("SECRETTOKEN"), Expiration: &exp,
		}
	}
	without := func(f func(*types.Credentials)) *types.Credentials { c := good(); f(c); return c }
	const prefix = "the reply holds invalid AWS credentials: "
	for _, tt := range []struct {
		name    string
		result  any
		wantErr string
	}{
		{name: "good web identity reply", result: &sts.AssumeRoleWithWebIdentityOutput{Credentials: good()}},
		{name: "good assume role reply", result: &sts.AssumeRoleOutput{Credentials: good()}},
		{name: "another operation", result: &sts.GetCallerIdentityOutput{}},
		{name: "no result", result: nil},
		{
			name:    "web identity without credentials",
			result:  &sts.AssumeRoleWithWebIdentityOutput{},
			wantErr: prefix + "Credentials is missing",
		},
		{
			name:    "assume role without credentials",
			result:  &sts.AssumeRoleOutput{},
			wantErr: prefix + "Credentials is missing",
		},
		{name: "nil output", result: (*sts.AssumeRoleOutput)(nil), wantErr: prefix + "Credentials is missing"},
		{
			name:    "no expiration",
			result:  &sts.AssumeRoleWithWebIdentityOutput{Credentials: without(func(c *types.Credentials) { c.Expiration = nil })},
			wantErr: prefix + "Expiration is missing",
		},
		{
			name:    "no access key id",
			result:  &sts.AssumeRoleOutput{Credentials: without(func(c *types.Credentials) { c.AccessKeyId = nil })},
			wantErr: prefix + "AccessKeyId is empty",
		},
		{
			name:    "empty secret",
			result:  &sts.AssumeRoleOutput{Credentials: without(func(c *types.Credentials) { c.SecretAccessKey = aws.String("") })},
			wantErr: prefix + "SecretAccessKey is empty",
		},
		{
			name:    "no session token",
			result:  &sts.AssumeRoleWithWebIdentityOutput{Credentials: without(func(c *types.Credentials) { c.SessionToken = nil })},
			wantErr: prefix + "SessionToken is empty",
		},
		{
			name: "expires within the margin",
			result: &sts.AssumeRoleOutput{Credentials: without(func(c *types.Credentials) {
				c.Expiration = aws.Time(now.Add(ExpiryMargin))
			})},
			wantErr: prefix + "Expiration 2026-05-01T10:01:00Z is not more than 1m0s after the current time 2026-05-01T10:00:00Z",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			err := checkSTSReply(tt.result, now)
			if tt.wantErr == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(tt.wantErr))
			g.Expect(err).To(MatchError(ErrInvalidCredentials))
			g.Expect(err.Error()).NotTo(ContainSubstring("SECRET"))
		})
	}
}

// The middleware hands a good reply on as it came: the same output, the
// same metadata.
func TestSTSReplyGuardLeavesAGoodReplyUntouched(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	exp := time.Now().Add(time.Hour)
	reply := &sts.AssumeRoleWithWebIdentityOutput{Credentials: &types.Credentials{
		AccessKeyId: aws.String("ASIAX"), SecretAccessKey: aws.String("SECRET"),
		SessionToken: aws.String("SECRETTOKEN"), Expiration: &exp,
	}}
	want := *reply.Credentials
	var md middleware.Metadata
	md.Set("key", "value")
	raw := &smithyhttp.Response{}
	next := middleware.DeserializeHandlerFunc(func(context.Context, middleware.DeserializeInput) (
		middleware.DeserializeOutput, middleware.Metadata, error) {
		return middleware.DeserializeOutput{RawResponse: raw, Result: reply}, md, nil
	})

	out, gotMD, err := stsReplyGuard{}.HandleDeserialize(context.Background(), middleware.DeserializeInput{}, next)

	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out.Result).To(BeIdenticalTo(reply))
	g.Expect(*reply.Credentials).To(Equal(want))
	g.Expect(out.RawResponse).To(BeIdenticalTo(raw))
	g.Expect(gotMD.Get("key")).To(Equal("value"))
}

// The guard goes on once however often it is added, as when an
// Implementation passed in guards by itself.
func TestGuardSTSRepliesAddsOnce(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	stack := middleware.NewStack("AssumeRole", smithyhttp.NewStackRequest)
	g.Expect(stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("OperationDeserializer",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
			middleware.DeserializeOutput, middleware.Metadata, error) {
			return next.HandleDeserialize(ctx, in)
		}), middleware.After)).To(Succeed())

	g.Expect(guardSTSReplies(stack)).To(Succeed())
	g.Expect(guardSTSReplies(stack)).To(Succeed())

	g.Expect(stack.Deserialize.List()).To(Equal([]string{stsReplyGuardID, "OperationDeserializer"}))
}
