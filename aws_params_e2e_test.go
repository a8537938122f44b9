package auth_test

import (
	"context"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/fluxcd/pkg/cache"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth"
	"github.com/identitychain/auth/aws"
	"github.com/identitychain/auth/fakes"
)

const (
	paramsExternalID = "my-app-7f3a9c"
	ecrReadOnly      = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
	ecrPolicy        = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"*"}]}`
)

// paramsWorld is an AWS world whose target role trusts the source role
// with the conditions of testdata/aws-assume-role-params.yaml.
func paramsWorld(t *testing.T, trust ...fakes.TrustOption) *awsWorld {
	t.Helper()
	w := newAWSWorld(t)
	w.sts.AllowWebIdentity(sourceRole, "my-app", "my-app")
	w.sts.AllowAssumeRole(sourceRole, targetRole, trust...)
	w.sts.DefineManagedPolicy(ecrReadOnly, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}`)
	return w
}

// Every AssumeRole parameter of testdata/aws-assume-role-params.yaml
// reaches STS as sent, and the fake STS, which checks them as STS does,
// grants the session.
func TestAWSAssumeRoleParameters(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := paramsWorld(t, fakes.RequireExternalID(paramsExternalID), fakes.AllowTagSession())
	ecr, provider := w.startECR(t, targetRole)
	kube := fakes.NewKubeClient(w.issuer, loadServiceAccount(t, "aws-assume-role-params.yaml"))
	opts := myAppOptions(kube, auth.WithSTSRegion(region))

	before := time.Now()
	token, err := auth.GetAccessToken(context.Background(), provider, opts...)
	g.Expect(err).NotTo(HaveOccurred())
	calls := w.sts.Calls()
	g.Expect(calls).To(HaveLen(2))
	g.Expect(calls[1]).To(Equal(fakes.AWSSTSCall{
		Action: "AssumeRole", RoleARN: targetRole, RoleSessionName: "my-app.my-app.fluxcd.io",
		Caller: sourceRole, Region: region,
		ExternalID: paramsExternalID, DurationSeconds: 1800,
		Tags:              map[string]string{"environment": "production", "team": "payments"},
		TransitiveTagKeys: []string{"team"},
		PolicyARNs:        []string{ecrReadOnly},
		Policy:            ecrPolicy,
		SessionTags:       map[string]string{"environment": "production", "team": "payments"},
	}))
	creds := token.(*aws.Credentials)
	g.Expect(w.whoAmI(t, token)).To(Equal(targetSession))
	g.Expect(awssdk.ToTime(creds.Expiration)).To(BeTemporally("~", before.Add(30*time.Minute), 5*time.Second),
		"the duration asked for")
	tags, transitive, ok := w.sts.SessionTags(awssdk.ToString(creds.AccessKeyId))
	g.Expect(ok).To(BeTrue())
	g.Expect(tags).To(HaveKeyWithValue("team", "payments"))
	g.Expect(transitive).To(Equal([]string{"team"}))

	// The session policies allow pulling images: registry login works.
	login, err := auth.GetArtifactRegistryCredentials(context.Background(), provider,
		"222222222222.dkr.ecr.us-east-1.amazonaws.com/app", opts...)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(login).NotTo(BeNil())
	g.Expect(ecr.Calls()).To(HaveLen(1))
	g.Expect(ecr.Calls()[0].Caller).To(Equal(targetRole))
}

// A session policy narrows the session: what it does not allow, the role
// cannot do, even where the role's own policies would.
func TestAWSSessionPolicyNarrows(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := paramsWorld(t)
	_, provider := w.startECR(t, targetRole)
	kube := fakes.NewKubeClient(w.issuer, sa("my-app", map[string]string{
		"eks.amazonaws.com/role-arn": sourceRole,
		aws.AssumeRoleAnnotation: "roleARN: " + targetRole + "\nuseServiceAccount: true\n" +
			`policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}'`,
	}))
	_, err := auth.GetArtifactRegistryCredentials(context.Background(), provider,
		"222222222222.dkr.ecr.us-east-1.amazonaws.com/app", myAppOptions(kube, auth.WithSTSRegion(region))...)
	g.Expect(err).To(MatchError(ContainSubstring("is not authorized to perform: ecr:GetAuthorizationToken on resource: * " +
		"because no session policy allows the ecr:GetAuthorizationToken action")))
}

// The refusals STS makes for these parameters are translated into a
// sentence that names the field and the policy to change.
func TestAWSAssumeRoleParameterRefusals(t *testing.T) {
	t.Parallel()
	const prefix = "failed to get aws credentials of '" + targetRole + "' impersonated from service account " +
		"'my-app/my-app' as '" + sourceRole + "' in region 'us-east-1': sts AssumeRole in region 'us-east-1': "
	const user = "arn:aws:sts::111111111111:assumed-role/source-account-role/my-app.my-app.fluxcd.io"
	annotations := func(extra string) map[string]string {
		return map[string]string{
			"eks.amazonaws.com/role-arn": sourceRole,
			aws.AssumeRoleAnnotation:     "roleARN: " + targetRole + "\nuseServiceAccount: true\n" + extra,
		}
	}
	for _, tt := range []struct {
		name  string
		trust []fakes.TrustOption
		extra string
		want  string
	}{
		{"wrong external ID", []fakes.TrustOption{fakes.RequireExternalID(paramsExternalID)}, "externalID: guess-1234",
			"User: " + user + " is not authorized to perform: sts:AssumeRole on resource: " + targetRole + ". the trust policy of '" +
				targetRole + "' must allow sts:AssumeRole by the source role, and the source role's policy must allow sts:AssumeRole on it; " +
				"the annotation sends externalID, so the trust policy's sts:ExternalId condition must equal it (STS does not say which condition failed)"},
		{"external ID missing", []fakes.TrustOption{fakes.RequireExternalID(paramsExternalID)}, "",
			"User: " + user + " is not authorized to perform: sts:AssumeRole on resource: " + targetRole + ". the trust policy of '" +
				targetRole + "' must allow sts:AssumeRole by the source role, and the source role's policy must allow sts:AssumeRole on it"},
		{"tags without sts:TagSession", nil, "sessionTags: {team: payments}",
			"User: " + user + " is not authorized to perform: sts:TagSession on resource: " + targetRole + ". the annotation sets " +
				"sessionTags: the trust policy of '" + targetRole + "' must allow sts:TagSession by the source role, and the source " +
				"role's policy must allow sts:TagSession on it"},
		{"an unknown managed policy", nil, "policyARNs: [arn:aws:iam::aws:policy/NoSuchPolicy]",
			"Policy arn:aws:iam::aws:policy/NoSuchPolicy does not exist or is not attachable.. STS refused the session policy: " +
				"check the annotation's policy and that every ARN of policyARNs names an existing managed policy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := paramsWorld(t, tt.trust...)
			kube := fakes.NewKubeClient(w.issuer, sa("my-app", annotations(tt.extra)))
			_, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube, auth.WithSTSRegion(region))...)
			g.Expect(err).To(MatchError(ContainSubstring(prefix)))
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		})
	}

	t.Run("refused in Plan: no cloud call", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		w := paramsWorld(t)
		kube := fakes.NewKubeClient(w.issuer, sa("my-app", annotations("duration: 2h")))
		_, err := auth.GetAccessToken(context.Background(), w.provider, myAppOptions(kube, auth.WithSTSRegion(region))...)
		g.Expect(err).To(MatchError(auth.ErrInvalidAnnotation))
		g.Expect(err).To(MatchError(ContainSubstring("STS caps a chained role session at 1h")))
		g.Expect(w.sts.Attempts()).To(BeZero())
		g.Expect(kube.TokenRequests()).To(BeZero())
	})

	t.Run("a tag the source session carries as transitive", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		w := newAWSWorld(t)
		w.sts.AllowAssumeRole(controllerRole, targetRole, fakes.AllowTagSession())
		// The controller's session carries Pod Identity's transitive tags.
		tagged := w.sts.IssueTaggedCredentials(controllerRole,
			map[string]string{"kubernetes-namespace": "flux-system"}, []string{"kubernetes-namespace"})
		provider := aws.Provider{Implementation: w.sts.ImplementationAs(awssdk.CredentialsProviderFunc(
			func(context.Context) (awssdk.Credentials, error) { return tagged, nil }))}
		kube := fakes.NewKubeClient(w.issuer, sa("my-app", map[string]string{
			aws.AssumeRoleAnnotation: "roleARN: " + targetRole + "\nsessionTags: {Kubernetes-Namespace: my-app}",
		}))
		_, err := auth.GetAccessToken(context.Background(), provider, myAppOptions(kube, auth.WithSTSRegion(region))...)
		g.Expect(err).To(MatchError(ContainSubstring("conflicts with a transitive tag inherited from the calling session")))
		g.Expect(err).To(MatchError(ContainSubstring(". the source session already carries that key as a transitive tag " +
			"(EKS Pod Identity sets kubernetes-namespace, kubernetes-service-account and others), and STS does not let a " +
			"chained session set it again: rename the key in the annotation's sessionTags")))

		// Without the clash, the target session carries both sets.
		kube = fakes.NewKubeClient(w.issuer, sa("my-app", map[string]string{
			aws.AssumeRoleAnnotation: "roleARN: " + targetRole + "\nsessionTags: {team: payments}",
		}))
		token, err := auth.GetAccessToken(context.Background(), provider, myAppOptions(kube, auth.WithSTSRegion(region))...)
		g.Expect(err).NotTo(HaveOccurred())
		tags, _, ok := w.sts.SessionTags(awssdk.ToString(token.(*aws.Credentials).AccessKeyId))
		g.Expect(ok).To(BeTrue())
		g.Expect(tags).To(Equal(map[string]string{"kubernetes-namespace": "flux-system", "team": "payments"}))
	})
}

// The cache keeps an assumed role's credentials for as long as the
// duration the annotation asked for allows, not for the default hour.
func TestAWSCacheFollowsDuration(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := newAWSWorld(t)
	w.sts.AllowWebIdentity(sourceRole, "my-app", "short")
	w.sts.AllowWebIdentity(sourceRole, "my-app", "long")
	w.sts.AllowAssumeRole(sourceRole, targetRole)
	annotations := func(extra string) map[string]string {
		return map[string]string{
			"eks.amazonaws.com/role-arn": sourceRole,
			aws.AssumeRoleAnnotation:     "roleARN: " + targetRole + "\nuseServiceAccount: true\n" + extra,
		}
	}
	kube := fakes.NewKubeClient(w.issuer, sa("short", annotations("duration: 15m")), sa("long", annotations("")))
	clock := newAdapterClock()
	tc, err := auth.NewTokenCache(10, auth.CacheClock(clock.Now))
	g.Expect(err).NotTo(HaveOccurred())
	assumed := func(name string) int {
		_, err := auth.GetAccessToken(context.Background(), w.provider, auth.WithClient(kube), auth.WithSTSRegion(region),
			auth.WithServiceAccountNamespace("my-app"), auth.WithServiceAccountName(name),
			auth.WithTokenCache(tc, cache.InvolvedObject{Kind: "Bucket", Name: name, Namespace: "my-app"}))
		g.Expect(err).NotTo(HaveOccurred())
		n := 0
		for _, c := range w.sts.Calls() {
			if c.Action == "AssumeRole" && c.RoleSessionName == "my-app."+name+".fluxcd.io" {
				n++
			}
		}
		return n
	}
	g.Expect(assumed("short")).To(Equal(1))
	g.Expect(assumed("long")).To(Equal(1))

	clock.Add(14*time.Minute + 45*time.Second) // past the 15m session's usable life, early in the 1h one's
	g.Expect(assumed("short")).To(Equal(2), "the 15m session was assumed again")
	g.Expect(assumed("long")).To(Equal(1), "the 1h session is still served")
}
