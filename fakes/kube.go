package fakes

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// Limits the kube-apiserver applies to TokenRequest.Spec.ExpirationSeconds.
const (
	kubeTokenDefaultTTL = time.Hour
	kubeTokenMinTTL     = 10 * time.Minute
	kubeTokenMaxTTL     = (1<<32 - 1) * time.Second
)

// KubeClient is a controller-runtime fake client whose service-account
// "token" subresource issues real JWTs, so that code under test can hand
// them to the fake clouds, which verify them.
//
// KubeClient is safe for concurrent use.
type KubeClient struct {
	client.WithWatch
	issuer        *Issuer
	tokenRequests atomic.Int64
}

// NewKubeClient returns a fake client holding objs. Its
// SubResource("token").Create on a ServiceAccount behaves like the
// kube-apiserver: NotFound when the ServiceAccount does not exist, audiences
// default to the issuer URL, the lifetime defaults to one hour and must be
// at least ten minutes, and the token is signed by issuer (required).
func NewKubeClient(issuer *Issuer, objs ...client.Object) *KubeClient {
	k := &KubeClient{issuer: issuer}
	base := fake.NewClientBuilder().WithObjects(objs...).Build()
	k.WithWatch = interceptor.NewClient(base, interceptor.Funcs{
		SubResourceCreate: k.subResourceCreate,
	})
	return k
}

// TokenRequests returns how many token subresource creations were received,
// whether or not they succeeded.
func (k *KubeClient) TokenRequests() int64 { return k.tokenRequests.Load() }

func (k *KubeClient) subResourceCreate(ctx context.Context, c client.Client, subResourceName string,
	obj client.Object, subResource client.Object, opts ...client.SubResourceCreateOption) error {
	if subResourceName != "token" {
		return c.SubResource(subResourceName).Create(ctx, obj, subResource, opts...)
	}
	k.tokenRequests.Add(1)

	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("token subresource is only served for ServiceAccounts, got %T", obj))
	}
	req, ok := subResource.(*authnv1.TokenRequest)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("got invalid type %T, expected TokenRequest", subResource))
	}

	// Read the stored object rather than trusting the caller's copy: the
	// apiserver answers NotFound for a ServiceAccount that does not exist,
	// and the token carries the stored UID.
	var stored corev1.ServiceAccount
	if err := c.Get(ctx, client.ObjectKeyFromObject(sa), &stored); err != nil {
		return err
	}

	ttl := kubeTokenDefaultTTL
	if s := req.Spec.ExpirationSeconds; s != nil {
		ttl = time.Duration(*s) * time.Second
		if ttl < kubeTokenMinTTL || ttl > kubeTokenMaxTTL {
			return apierrors.NewInvalid(authnv1.SchemeGroupVersion.WithKind("TokenRequest").GroupKind(), stored.Name,
				field.ErrorList{field.Invalid(field.NewPath("spec", "expirationSeconds"), *s,
					"may not specify a duration less than 10 minutes or longer than 2^32 seconds")})
		}
	}
	audiences := req.Spec.Audiences
	if len(audiences) == 0 {
		audiences = []string{k.issuer.URL()}
	}
	uid := string(stored.UID)
	if uid == "" {
		uid = kubeServiceAccountUID(stored.Namespace, stored.Name)
	}

	token, exp, err := k.issuer.sign(stored.Namespace, stored.Name, uid, audiences, ttl)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	req.Spec.Audiences = append([]string(nil), audiences...)
	req.Status.Token = token
	req.Status.ExpirationTimestamp = metav1.NewTime(exp.Truncate(time.Second))
	*sa = stored
	return nil
}
