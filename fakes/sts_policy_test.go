package fakes_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	. "github.com/onsi/gomega"

	"github.com/identitychain/auth/fakes"
)

const (
	// policyRole is the role whose sessions the tests restrict; ECR,
	// ECR Public and the cluster eksTestCluster are open to it.
	policyRole = awsTestOtherRole
	// policySession is the session paramsAssume makes of policyRole.
	policySession = "arn:aws:sts::123456789012:assumed-role/other/flux-session"
	// policyNextRole is a role policyRole may assume, with tags.
	policyNextRole = "arn:aws:iam::123456789012:role/next"
)

// policyWorld is a fake STS, ECR and EKS where awsTestRole may assume
// policyRole, which may use ECR, ECR Public and the cluster eksTestCluster
// and assume policyNextRole, which may use ECR.
type policyWorld struct {
	sts *fakes.AWSSTS
	ecr *fakes.ECR
	eks *fakes.EKS
	api *fakes.KubeAPIServer
}

func policyStart(t *testing.T) *policyWorld {
	t.Helper()
	s := awsStartSTS(t, fakes.AWSSTSOptions{Issuer: awsSharedIssuer()})
	s.AllowAssumeRole(awsTestRole, policyRole)
	s.AllowAssumeRole(policyRole, policyNextRole, fakes.AllowTagSession())
	e := fakes.StartECR(s, fakes.ECROptions{})
	t.Cleanup(e.Close)
	e.Allow(policyRole)
	e.AllowPublic(policyRole)
	e.Allow(policyNextRole)
	k := fakes.StartEKS(s)
	t.Cleanup(k.Close)
	return &policyWorld{sts: s, ecr: e, eks: k, api: k.AddCluster(eksTestCluster, policyRole)}
}

// session assumes policyRole from awsTestRole with in's session policies.
func (w *policyWorld) session(t *testing.T, in sts.AssumeRoleInput) aws.Credentials {
	t.Helper()
	in.RoleArn = aws.String(policyRole)
	out, err := paramsAssume(w.sts, w.sts.IssueCredentials(awsTestRole), in)
	if err != nil {
		t.Fatalf("failed to assume %s: %v", policyRole, err)
	}
	return paramsCreds(out)
}

// use calls op ("ecr", "ecr-public" or "eks") with creds and returns its
// error.
func (w *policyWorld) use(t *testing.T, op string, creds aws.Credentials) error {
	t.Helper()
	switch op {
	case "ecr", "ecr-public":
		_, err := ecrGetLogin(t, w.ecr, op == "ecr-public", awsStatic(creds))
		return err
	case "eks":
		_, err := eks.New(eks.Options{
			Region: awsTestRegion, Credentials: awsStatic(creds), BaseEndpoint: aws.String(w.eks.URL), Retryer: aws.NopRetryer{},
		}).DescribeCluster(context.Background(), &eks.DescribeClusterInput{Name: aws.String(eksTestClusterName)})
		return err
	}
	t.Fatalf("unknown operation %q", op)
	return nil
}

func TestSessionPolicies_ECRAndEKS(t *testing.T) {
	t.Parallel()
	denied := func(action, resource, why string) string {
		return "User: " + policySession + " is not authorized to perform: " + action + " on resource: " + resource + why
	}
	noAllow := func(action string) string { return " because no session policy allows the " + action + " action" }
	const explicitDeny = " with an explicit deny in a session policy"
	ecrNoAllow := denied(fakes.ECRGetAuthorizationToken, "*", noAllow(fakes.ECRGetAuthorizationToken))
	publicNoAllow := denied(fakes.ECRPublicGetAuthorizationToken, "*", noAllow(fakes.ECRPublicGetAuthorizationToken))
	eksNoAllow := denied("eks:DescribeCluster", eksTestCluster, noAllow("eks:DescribeCluster"))
	const ecrReadOnly = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
	const eksDeny = "arn:aws:iam::123456789012:policy/deny-eks"

	for _, tt := range []struct {
		name   string
		policy string
		arns   []string
		// want maps each operation to its AccessDeniedException message,
		// "" when allowed.
		want map[string]string
	}{
		{
			name: "no session policy",
			want: map[string]string{"ecr": "", "ecr-public": "", "eks": ""},
		},
		{
			name:   "ECR only",
			policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"}]}`,
			want:   map[string]string{"ecr": "", "ecr-public": publicNoAllow, "eks": eksNoAllow},
		},
		{
			name:   "actions match ignoring case, with wildcards",
			policy: `{"Statement":{"Effect":"Allow","Action":["ECR:get*","eks:*"],"Resource":"*"}}`,
			want:   map[string]string{"ecr": "", "ecr-public": publicNoAllow, "eks": ""},
		},
		{
			name:   "everything",
			policy: `{"Statement":{"Effect":"Allow","Action":"*","Resource":["*"]}}`,
			want:   map[string]string{"ecr": "", "ecr-public": "", "eks": ""},
		},
		{
			name:   "nothing",
			policy: `{"Statement":[]}`,
			want:   map[string]string{"ecr": ecrNoAllow, "ecr-public": publicNoAllow, "eks": eksNoAllow},
		},
		{
			name:   "ECR Public without sts:GetServiceBearerToken",
			policy: `{"Statement":{"Effect":"Allow","Action":"ecr-public:GetAuthorizationToken","Resource":"*"}}`,
			want: map[string]string{
				"ecr-public": denied("sts:GetServiceBearerToken", "*", noAllow("sts:GetServiceBearerToken")),
			},
		},
		{
			name:   "ECR Public with sts:GetServiceBearerToken",
			policy: `{"Statement":{"Effect":"Allow","Action":["ecr-public:GetAuthorizationToken","sts:GetServiceBearerToken"],"Resource":"*"}}`,
			want:   map[string]string{"ecr-public": "", "ecr": ecrNoAllow},
		},
		{
			name:   "ECR on a repository only",
			policy: `{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:123456789012:repository/app"}}`,
			want:   map[string]string{"ecr": ecrNoAllow},
		},
		{
			name:   "the cluster by its ARN",
			policy: `{"Statement":{"Effect":"Allow","Action":"eks:DescribeCluster","Resource":"` + eksTestCluster + `"}}`,
			want:   map[string]string{"eks": "", "ecr": ecrNoAllow},
		},
		{
			name:   "clusters by a wildcard ARN",
			policy: `{"Statement":{"Effect":"Allow","Action":"eks:DescribeCluster","Resource":"arn:aws:eks:*:123456789012:cluster/p*"}}`,
			want:   map[string]string{"eks": ""},
		},
		{
			name:   "another cluster",
			policy: `{"Statement":{"Effect":"Allow","Action":"eks:DescribeCluster","Resource":"arn:aws:eks:eu-central-1:123456789012:cluster/staging"}}`,
			want:   map[string]string{"eks": eksNoAllow},
		},
		{
			name: "an explicit deny wins",
			policy: `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},` +
				`{"Effect":"Deny","Action":"ecr:*","Resource":"*"},` +
				`{"Effect":"Deny","Action":"eks:DescribeCluster","Resource":"arn:aws:eks:eu-central-1:123456789012:cluster/staging"}]}`,
			want: map[string]string{
				"ecr":        denied(fakes.ECRGetAuthorizationToken, "*", explicitDeny),
				"ecr-public": "",
				"eks":        "",
			},
		},
		{
			name:   "NotAction",
			policy: `{"Statement":{"Effect":"Allow","NotAction":"ecr:*","Resource":"*"}}`,
			want:   map[string]string{"ecr": ecrNoAllow, "eks": ""},
		},
		{
			name: "a managed policy",
			arns: []string{ecrReadOnly},
			want: map[string]string{"ecr": "", "ecr-public": publicNoAllow, "eks": eksNoAllow},
		},
		{
			name:   "inline and managed policies allow together",
			policy: `{"Statement":{"Effect":"Allow","Action":"eks:DescribeCluster","Resource":"*"}}`,
			arns:   []string{ecrReadOnly},
			want:   map[string]string{"ecr": "", "eks": ""},
		},
		{
			name: "a managed policy's deny",
			arns: []string{ecrReadOnly, eksDeny},
			want: map[string]string{"ecr": "", "eks": denied("eks:DescribeCluster", eksTestCluster, explicitDeny)},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := policyStart(t)
			w.sts.DefineManagedPolicy(ecrReadOnly,
				`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage"],"Resource":"*"}]}`)
			w.sts.DefineManagedPolicy(eksDeny,
				`{"Statement":[{"Effect":"Deny","Action":"eks:*","Resource":"*"}]}`)
			in := sts.AssumeRoleInput{PolicyArns: paramsPolicyARNs(tt.arns...)}
			if tt.policy != "" {
				in.Policy = aws.String(tt.policy)
			}
			creds := w.session(t, in)

			for op, want := range tt.want {
				err := w.use(t, op, creds)
				if want == "" {
					g.Expect(err).NotTo(HaveOccurred(), op)
					continue
				}
				g.Expect(awsErrorCode(err)).To(Equal("AccessDeniedException"), op)
				g.Expect(awsErrorMessage(err)).To(Equal(want), op)
			}

			// GetCallerIdentity is never subject to session policies.
			id, err := awsSTSClient(w.sts, awsStatic(creds)).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(aws.ToString(id.Arn)).To(Equal(policySession))
		})
	}
}

// TestSessionPolicies_EKSTokenUnaffected shows that a session whose
// policies allow nothing still authenticates to the cluster: EKS tokens
// are presigned GetCallerIdentity calls.
func TestSessionPolicies_EKSTokenUnaffected(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := policyStart(t)
	creds := w.session(t, sts.AssumeRoleInput{Policy: aws.String(`{"Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}`)})

	err := w.use(t, "eks", creds)
	g.Expect(awsErrorMessage(err)).To(Equal("User: " + policySession + " is not authorized to perform: eks:DescribeCluster on resource: " +
		eksTestCluster + " with an explicit deny in a session policy"))

	presigned := awsPresignCallerIdentity(t, w.sts, creds, eksTestClusterName)
	user, err := kubeWhoAmI(t, w.api, "k8s-aws-v1."+base64.RawURLEncoding.EncodeToString([]byte(presigned)))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(user.Username).To(Equal(policySession))
}

// TestSessionPolicies_AssumeRole checks that the session policies of the
// calling session limit the roles it may assume and tag, and that the
// assumed session does not inherit them.
func TestSessionPolicies_AssumeRole(t *testing.T) {
	t.Parallel()
	denied := func(action, why string) string {
		return "User: " + policySession + " is not authorized to perform: " + action + " on resource: " + policyNextRole + why
	}
	for _, tt := range []struct {
		name    string
		policy  string
		in      sts.AssumeRoleInput
		wantMsg string
	}{
		{
			name:    "no session policy allows sts:AssumeRole",
			policy:  `{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"*"}}`,
			wantMsg: denied("sts:AssumeRole", " because no session policy allows the sts:AssumeRole action"),
		},
		{
			name:    "sts:AssumeRole of another role",
			policy:  `{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::123456789012:role/other"}}`,
			wantMsg: denied("sts:AssumeRole", " because no session policy allows the sts:AssumeRole action"),
		},
		{
			name:   "sts:AssumeRole of the role",
			policy: `{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + policyNextRole + `"}}`,
		},
		{
			name: "sts:AssumeRole denied explicitly",
			policy: `{"Statement":[{"Effect":"Allow","Action":"sts:*","Resource":"*"},` +
				`{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"arn:aws:iam::123456789012:role/*"}]}`,
			wantMsg: denied("sts:AssumeRole", " with an explicit deny in a session policy"),
		},
		{
			name:    "tags without sts:TagSession",
			policy:  `{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}}`,
			in:      sts.AssumeRoleInput{Tags: paramsTags("team", "a")},
			wantMsg: denied("sts:TagSession", " because no session policy allows the sts:TagSession action"),
		},
		{
			name:   "tags with sts:TagSession",
			policy: `{"Statement":{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession"],"Resource":"*"}}`,
			in:     sts.AssumeRoleInput{Tags: paramsTags("team", "a")},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			w := policyStart(t)
			creds := w.session(t, sts.AssumeRoleInput{Policy: aws.String(tt.policy)})
			g.Expect(w.use(t, "eks", creds)).To(HaveOccurred())

			tt.in.RoleArn = aws.String(policyNextRole)
			out, err := paramsAssume(w.sts, creds, tt.in)

			if tt.wantMsg != "" {
				paramsExpectRefused(g, w.sts, err, "AccessDenied", tt.wantMsg)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			// The next session has no session policies: its role's
			// permissions apply in full.
			g.Expect(w.use(t, "ecr", paramsCreds(out))).To(Succeed())
		})
	}
}

// TestSessionPolicies_WebIdentity checks that AssumeRoleWithWebIdentity
// gives its session the policies asked for.
func TestSessionPolicies_WebIdentity(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	w := policyStart(t)
	w.sts.AllowWebIdentity(policyRole, awsTestNamespace, awsTestSA)
	out, err := awsSTSClient(w.sts, nil).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(policyRole),
		RoleSessionName:  aws.String(awsTestSession),
		WebIdentityToken: aws.String(awsSign(t, awsSharedIssuer(), awsTestNamespace, awsTestSA, "sts.amazonaws.com")),
		Policy:           aws.String(`{"Statement":{"Effect":"Allow","Action":"eks:DescribeCluster","Resource":"*"}}`),
	})
	g.Expect(err).NotTo(HaveOccurred())
	creds := aws.Credentials{
		AccessKeyID:     aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey),
		SessionToken:    aws.ToString(out.Credentials.SessionToken),
	}
	g.Expect(w.use(t, "eks", creds)).To(Succeed())
	err = w.use(t, "ecr", creds)
	g.Expect(awsErrorMessage(err)).To(Equal("User: " + policySession + " is not authorized to perform: ecr:GetAuthorizationToken on resource: * " +
		"because no session policy allows the ecr:GetAuthorizationToken action"))

	// An undefined managed policy is refused here too.
	_, err = awsSTSClient(w.sts, nil).AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(policyRole),
		RoleSessionName:  aws.String(awsTestSession),
		WebIdentityToken: aws.String(awsSign(t, awsSharedIssuer(), awsTestNamespace, awsTestSA, "sts.amazonaws.com")),
		PolicyArns:       paramsPolicyARNs("arn:aws:iam::123456789012:policy/missing"),
	})
	paramsExpectRefused(g, w.sts, err, "MalformedPolicyDocument", "Policy arn:aws:iam::123456789012:policy/missing does not exist or is not attachable.")
}
