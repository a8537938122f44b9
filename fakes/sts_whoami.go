package fakes

// WhoAmI returns the ARN of the assumed-role session that accessKeyID was
// issued to (as GetCallerIdentity would, without a signed request), or
// false when the fake did not issue it. Tests use it to compare the
// identities of many credentials cheaply.
func (s *AWSSTS) WhoAmI(accessKeyID string) (arn string, ok bool) {
	s.mu.RLock()
	issued, ok := s.creds[accessKeyID]
	s.mu.RUnlock()
	if !ok {
		return "", false
	}
	return awsAssumedRoleUser(issued.roleARN, issued.sessionName).Arn, true
}
