"""Pulumi type tokens of the Kubernetes resources the tests look for (pulumi-kubernetes names them
`kubernetes:<group>/<version>:<Kind>`; the core group is `core`). One place, so a test reads
`STS`, not the token."""

STS = "kubernetes:apps/v1:StatefulSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
DAEMONSET = "kubernetes:apps/v1:DaemonSet"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
SERVICE = "kubernetes:core/v1:Service"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
