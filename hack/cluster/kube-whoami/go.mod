module chaperone.dev/hack/cluster/kube-whoami

go 1.24
