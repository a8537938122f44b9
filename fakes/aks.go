package fakes

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// aksARMAudience is Azure Resource Manager's audience in the public
	// cloud configuration, for which upstream asks the token that
	// describes a cluster.
	aksARMAudience = "https://management.core.windows.net/"
	// aksServerAudience is the AKS Microsoft Entra server app, the audience
	// of the tokens AKS API servers take.
	aksServerAudience = "6dae42f8-4368-4678-94ff-3960e28e3630"
)

// Azure Resource Manager takes either audience, with or without the slash.
var aksARMAudiences = []string{aksARMAudience, "https://management.core.windows.net",
	"https://management.azure.com", "https://management.azure.com/"}

// aksClusterPattern is a managed cluster's resource ID, optionally followed
// by the listClusterUserCredential action.
var aksClusterPattern = regexp.MustCompile(`(?i)^(/subscriptions/[^/]+/resourceGroups/([^/]+)/providers/` +
	`Microsoft\.ContainerService/managedClusters/([^/]+))(/listClusterUserCredential)?$`)

// AKSCall is one Azure Resource Manager request as the fake saw it,
// recorded whether it succeeded or not. It holds no token.
type AKSCall struct {
	// Cluster is the resource ID of the cluster asked for.
	Cluster string
	// Operation is "get" or "listClusterUserCredential".
	Operation string
	// TenantID and ClientID say whose the bearer token is; "" when it was
	// missing or unknown.
	TenantID, ClientID string
	// Err is "" on success, otherwise ARM's error code, e.g.
	// "AuthorizationFailed".
	Err string
}

// AKS is a fake of the two Azure Resource Manager operations of AKS that a
// REST config needs, the managed cluster's GET and its
// listClusterUserCredential, on 127.0.0.1 over HTTPS (the SDK sends bearer
// tokens over nothing else). AzureImplementation.WithAKS points upstream's
// managed clusters client at it. Each cluster added has a KubeAPIServer,
// whose address and CA the kubeconfig of listClusterUserCredential holds.
//
// It checks what ARM checks: the bearer token is one the fake Entra minted
// (401 InvalidAuthenticationToken), not expired (401
// ExpiredAuthenticationToken), for ARM's audience (401
// InvalidAuthenticationTokenAudience); the cluster exists (404
// ResourceNotFound); the token was issued in the tenant of the cluster's
// subscription (401 InvalidAuthenticationTokenTenant), to a client with a
// role on the cluster (403 AuthorizationFailed).
//
// The clusters' API servers take Entra tokens for the AKS server app
// (6dae42f8-4368-4678-94ff-3960e28e3630/.default), issued in the cluster's
// tenant, as AKS with Microsoft Entra integration does; the username is
// the object ID of the client's service principal there. Clients not given
// to AddCluster are Forbidden.
//
// AKS is safe for concurrent use.
type AKS struct {
	// URL is the base URL of the fake, "https://127.0.0.1:<port>".
	URL string

	entra *Entra
	srv   *httptest.Server

	// mu guards clusters and calls.
	mu       sync.Mutex
	clusters map[string]*aksCluster
	calls    []AKSCall
}

type aksCluster struct {
	id, tenantID string
	clients      []string
	api          *KubeAPIServer
}

// StartAKS starts a fake Azure Resource Manager for AKS on 127.0.0.1
// taking the tokens of e. Close it when done.
func StartAKS(e *Entra) *AKS {
	k := &AKS{entra: e, clusters: map[string]*aksCluster{}}
	k.srv = httptest.NewTLSServer(http.HandlerFunc(k.serveHTTP))
	k.URL = k.srv.URL
	return k
}

// Close shuts the fake and the API servers of its clusters down.
func (k *AKS) Close() {
	k.srv.Close()
	k.mu.Lock()
	clusters := k.clusters
	k.mu.Unlock()
	for _, c := range clusters {
		c.api.close()
	}
}

// AddCluster creates the managed cluster resourceID
// (/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.ContainerService/managedClusters/<name>)
// in a subscription of tenantID, and starts its API server. clients (by
// client ID, apps or managed identities with a service principal in
// tenantID) may describe it and use its API. It panics for an invalid ID
// or a cluster added before.
func (k *AKS) AddCluster(resourceID, tenantID string, clientIDs ...string) *KubeAPIServer {
	m := aksClusterPattern.FindStringSubmatch(resourceID)
	if m == nil || m[4] != "" {
		panic("fakes: AKS.AddCluster: invalid resource ID '" + resourceID + "'")
	}
	c := &aksCluster{id: resourceID, tenantID: tenantID, clients: slices.Clone(clientIDs)}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.clusters[strings.ToLower(resourceID)]; ok {
		panic("fakes: AKS.AddCluster: cluster '" + resourceID + "' exists")
	}
	c.api = startKubeAPIServer(func(_ *http.Request, token string) (kubeUserInfo, kubeVerdict) {
		t, reason := k.entra.lookup(token)
		if reason != "" || t.Audience != aksServerAudience || t.TenantID != c.tenantID {
			return kubeUserInfo{}, kubeUnauthorized
		}
		user := kubeUserInfo{Username: t.ObjectID, Groups: []string{"system:authenticated"},
			Extra: map[string]kubeExtraValue{"oid": {t.ObjectID}}}
		if !slices.Contains(c.clients, t.ClientID) {
			return user, kubeForbidden
		}
		return user, kubeAllowed
	})
	k.clusters[strings.ToLower(resourceID)] = c
	return c.api
}

// Calls returns a copy of every request to a cluster, in arrival order.
func (k *AKS) Calls() []AKSCall {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.calls)
}

func (k *AKS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	m := aksClusterPattern.FindStringSubmatch(r.URL.Path)
	op := "get"
	switch {
	case m == nil:
		aksWriteError(w, http.StatusNotFound, "InvalidResourceType", "The resource type could not be found.")
		return
	case m[4] != "" && r.Method == http.MethodPost:
		op = "listClusterUserCredential"
	case m[4] != "" || r.Method != http.MethodGet:
		aksWriteError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The method is not allowed.")
		return
	}
	call := AKSCall{Cluster: m[1], Operation: op}
	fail := func(status int, code, message string) {
		call.Err = code
		k.record(call)
		aksWriteError(w, status, code, message)
	}

	token, reason := k.entra.lookup(gcpBearer(r))
	if reason != "unknown" {
		call.TenantID, call.ClientID = token.TenantID, token.ClientID
	}
	k.mu.Lock()
	c := k.clusters[strings.ToLower(m[1])]
	k.mu.Unlock()
	now := k.entra.now()
	switch {
	case reason == "unknown":
		fail(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
	case reason == "expired":
		fail(http.StatusUnauthorized, "ExpiredAuthenticationToken", fmt.Sprintf("The access token expiry UTC time "+
			"'%s' is earlier than current UTC time '%s'.", token.Expiry.UTC().Format(time.RFC1123), now.UTC().Format(time.RFC1123)))
	case !slices.Contains(aksARMAudiences, token.Audience):
		fail(http.StatusUnauthorized, "InvalidAuthenticationTokenAudience", fmt.Sprintf("The access token has been "+
			"obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences "+
			"'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/',"+
			"'https://management.azure.com'.", token.Audience))
	case c == nil:
		fail(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The Resource "+
			"'Microsoft.ContainerService/managedClusters/%s' under resource group '%s' was not found.", m[3], m[2]))
	case token.TenantID != c.tenantID:
		fail(http.StatusUnauthorized, "InvalidAuthenticationTokenTenant", fmt.Sprintf("The access token is from the "+
			"wrong issuer 'https://sts.windows.net/%s/'. It must match the tenant 'https://sts.windows.net/%s/' "+
			"associated with this subscription. Please use the authority (URL) 'https://login.windows.net/%s' to get "+
			"the token.", token.TenantID, c.tenantID, c.tenantID))
	case !slices.Contains(c.clients, token.ClientID):
		action := "Microsoft.ContainerService/managedClusters/read"
		if op != "get" {
			action = "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
		}
		fail(http.StatusForbidden, "AuthorizationFailed", fmt.Sprintf("The client '%s' with object id '%s' does "+
			"not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was "+
			"recently granted, please refresh your credentials.", token.ObjectID, token.ObjectID, action, c.id))
	case op == "get":
		k.record(call)
		entraWriteJSON(w, http.StatusOK, map[string]any{
			"id": c.id, "name": m[3], "type": "Microsoft.ContainerService/ManagedClusters", "location": "westeurope",
			"properties": map[string]any{
				"provisioningState": "Succeeded",
				"fqdn":              strings.TrimPrefix(c.api.URL, "https://"),
				"aadProfile":        map[string]any{"managed": true, "enableAzureRBAC": true, "tenantID": c.tenantID},
			},
		})
	default:
		k.record(call)
		entraWriteJSON(w, http.StatusOK, map[string]any{"kubeconfigs": []map[string]any{
			{"name": "clusterUser", "value": []byte(aksKubeconfig(m[2], m[3], c.api))},
		}})
	}
}

func (k *AKS) record(c AKSCall) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, c)
}

// aksKubeconfig is the user kubeconfig AKS returns for a cluster with
// Microsoft Entra integration: the API server, its CA, and kubelogin.
func aksKubeconfig(group, name string, api *KubeAPIServer) string {
	user := "clusterUser_" + group + "_" + name
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority-data: %[3]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[4]s
current-context: %[1]s
users:
- name: %[4]s
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: kubelogin
      args: [get-token, --login, azurecli, --server-id, %[5]s]
      interactiveMode: IfAvailable
`, name, api.URL, base64.StdEncoding.EncodeToString(api.CAData), user, aksServerAudience)
}

// aksWriteError writes an error as Azure Resource Manager does.
func aksWriteError(w http.ResponseWriter, status int, code, message string) {
	entraWriteJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}
