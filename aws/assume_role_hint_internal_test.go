package aws

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	. "github.com/onsi/gomega"
)

// TestAssumeRoleHint pins the sentence added to each refusal STS makes for
// the annotation's parameters, including those the fake STS cannot make
// (PackedPolicyTooLarge depends on STS's undocumented packing).
func TestAssumeRoleHint(t *testing.T) {
	const role = "arn:aws:iam::222222222222:role/t"
	id, tags := "x-1234", &assumeRoleParams{}
	withExternalID := &assumeRoleParams{externalID: &id}
	tags.tags = []types.Tag{}
	for _, tt := range []struct {
		name, code, msg string
		params          *assumeRoleParams
		want            string
	}{
		{"access denied", "AccessDenied", "not authorized to perform: sts:AssumeRole", nil,
			". the trust policy of '" + role + "' must allow sts:AssumeRole by the source role, and the source role's policy must allow sts:AssumeRole on it"},
		{"access denied with an external ID", "AccessDenied", "not authorized to perform: sts:AssumeRole", withExternalID,
			". the trust policy of '" + role + "' must allow sts:AssumeRole by the source role, and the source role's policy must allow sts:AssumeRole on it; " +
				"the annotation sends externalID, so the trust policy's sts:ExternalId condition must equal it (STS does not say which condition failed)"},
		{"tag session, inherited tags", "AccessDenied", "not authorized to perform: sts:TagSession on resource", nil,
			". the source session carries transitive tags: the trust policy of '" + role + "' must allow sts:TagSession by the source role, and the source role's policy must allow sts:TagSession on it"},
		{"tag session, annotation tags", "AccessDenied", "not authorized to perform: sts:TagSession on resource", tags,
			". the annotation sets sessionTags: the trust policy of '" + role + "' must allow sts:TagSession by the source role, and the source role's policy must allow sts:TagSession on it"},
		{"packed policy", "PackedPolicyTooLarge", "Packed size of session tags consumes 142% of allotted space.", tags,
			". the annotation's sessionTags and policy, with any tags the source session carries, are too large for STS once packed: use fewer or shorter tags, or move the policy into policyARNs"},
		{"duration", "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.", nil,
			". lower the annotation's duration: a role assumed from another role's session lasts at most 1h, and never longer than the role's maximum session duration"},
		{"another validation error", "ValidationError", "1 validation error detected", nil, ""},
		{"throttling", "Throttling", "Rate exceeded", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			err := fmt.Errorf("operation error: %w", &smithy.GenericAPIError{Code: tt.code, Message: tt.msg})
			g.Expect(assumeRoleHint(err, role, tt.params)).To(Equal(tt.want))
		})
	}
	t.Run("not an API error", func(t *testing.T) {
		NewWithT(t).Expect(assumeRoleHint(fmt.Errorf("dial tcp: refused"), role, nil)).To(BeEmpty())
	})
}
