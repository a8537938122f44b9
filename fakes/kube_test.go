package fakes_test

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/identitychain/auth/fakes"
)

func kubeServiceAccount(namespace, name, uid string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: k8stypes.UID(uid)}}
}

func kubeKey(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: namespace, Name: name}
}

func TestKubeClient_TokenRequest(t *testing.T) {
	t.Parallel()
	issuer := awsNewIssuer(t, awsTestIssuerURL)
	now := time.Now().Truncate(time.Second)
	issuer.SetClock(func() time.Time { return now })

	for _, tt := range []struct {
		name          string
		sa            *corev1.ServiceAccount
		spec          authnv1.TokenRequestSpec
		wantAudiences []string
		wantTTL       time.Duration
		wantNotFound  bool
		wantInvalid   bool
	}{
		{
			name:          "requested audiences",
			sa:            kubeServiceAccount("flux-system", "source-controller", "1c2d3e4f-0000-4000-8000-000000000001"),
			spec:          authnv1.TokenRequestSpec{Audiences: []string{"sts.amazonaws.com", "other"}},
			wantAudiences: []string{"sts.amazonaws.com", "other"},
			wantTTL:       time.Hour,
		},
		{
			name:          "default audience is the issuer",
			sa:            kubeServiceAccount("flux-system", "source-controller", ""),
			wantAudiences: []string{awsTestIssuerURL},
			wantTTL:       time.Hour,
		},
		{
			name:          "requested lifetime",
			sa:            kubeServiceAccount("flux-system", "source-controller", ""),
			spec:          authnv1.TokenRequestSpec{Audiences: []string{"a"}, ExpirationSeconds: ptr.To[int64](600)},
			wantAudiences: []string{"a"},
			wantTTL:       10 * time.Minute,
		},
		{
			name:        "lifetime below ten minutes",
			sa:          kubeServiceAccount("flux-system", "source-controller", ""),
			spec:        authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](599)},
			wantInvalid: true,
		},
		{
			name:         "service account does not exist",
			wantNotFound: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			var kube *fakes.KubeClient
			if tt.sa != nil {
				kube = fakes.NewKubeClient(issuer, tt.sa)
			} else {
				kube = fakes.NewKubeClient(issuer)
			}
			req := &authnv1.TokenRequest{Spec: tt.spec}
			err := kube.SubResource("token").Create(context.Background(),
				kubeServiceAccount("flux-system", "source-controller", ""), req)
			g.Expect(kube.TokenRequests()).To(Equal(int64(1)))

			switch {
			case tt.wantNotFound:
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%v", err)
				return
			case tt.wantInvalid:
				g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(req.Status.ExpirationTimestamp.Time).To(BeTemporally("==", now.Add(tt.wantTTL)))
			for _, aud := range tt.wantAudiences {
				sub, err := issuer.Verify(req.Status.Token, aud)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(sub).To(Equal("system:serviceaccount:flux-system:source-controller"))
			}
			claims := kubeTokenPayload(t, req.Status.Token)
			g.Expect(claims["aud"]).To(HaveLen(len(tt.wantAudiences)))
			sa := claims["kubernetes.io"].(map[string]any)["serviceaccount"].(map[string]any)
			if tt.sa.UID != "" {
				g.Expect(sa).To(HaveKeyWithValue("uid", string(tt.sa.UID)))
			} else {
				g.Expect(sa["uid"]).NotTo(BeEmpty())
			}
		})
	}
}

func TestKubeClient_OtherOperations(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	kube := fakes.NewKubeClient(awsSharedIssuer(), kubeServiceAccount("ns", "sa", ""))
	var sa corev1.ServiceAccount
	g.Expect(kube.Get(context.Background(), kubeKey("ns", "sa"), &sa)).To(Succeed())
	g.Expect(kube.Create(context.Background(), kubeServiceAccount("ns", "sa2", ""))).To(Succeed())
	g.Expect(kube.Get(context.Background(), kubeKey("ns", "sa2"), &sa)).To(Succeed())
	g.Expect(kube.TokenRequests()).To(BeZero())
}

func TestKubeClient_Concurrent(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	issuer := awsSharedIssuer()
	kube := fakes.NewKubeClient(issuer, kubeServiceAccount("ns", "sa", ""))
	const workers = 32
	var wg sync.WaitGroup
	tokens := make(chan string, workers)
	for range workers {
		wg.Go(func() {
			req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{Audiences: []string{"aud"}}}
			if err := kube.SubResource("token").Create(context.Background(), kubeServiceAccount("ns", "sa", ""), req); err != nil {
				t.Error(err)
				return
			}
			tokens <- req.Status.Token
		})
	}
	wg.Wait()
	close(tokens)
	seen := map[string]bool{}
	for token := range tokens {
		_, err := issuer.Verify(token, "aud")
		g.Expect(err).NotTo(HaveOccurred())
		seen[token] = true
	}
	g.Expect(seen).To(HaveLen(workers), "every token is distinct (jti)")
	g.Expect(kube.TokenRequests()).To(Equal(int64(workers)))
}
