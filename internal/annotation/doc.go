// Package annotation decodes the YAML values of the impersonation
// annotations that tenants write on ServiceAccounts.
package annotation
