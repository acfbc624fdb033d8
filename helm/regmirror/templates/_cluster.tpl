{{/* Several StatefulSet replicas act as one mirror (README "Running several replicas"). */}}
{{- define "regmirror.clustered" -}}
{{- if and (eq .Values.mode "statefulset") (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/* The Secret that holds the replicas' shared secret, and its key. */}}
{{- define "regmirror.clusterSecretName" -}}
{{- default (printf "%s-cluster" (include "regmirror.fullname" .)) .Values.cluster.existingSecret -}}
{{- end -}}
{{- define "regmirror.clusterSecretKey" -}}
{{- if .Values.cluster.existingSecret -}}{{- .Values.cluster.secretKey -}}{{- else -}}secret{{- end -}}
{{- end -}}

{{/* The environment variable cluster.secretEnv names; the pod takes it from the Secret above. */}}
{{- define "regmirror.clusterSecretEnv" -}}REGMIRROR_CLUSTER_SECRET{{- end -}}

{{/*
The config the replicas need, as JSON: shared metadata in Redis (storage.metadata) and the cluster
section. Replicas without a shared Redis would each keep their own tags and leases: refused.
*/}}
{{- define "regmirror.clusterConfig" -}}
{{- $v := .Values -}}
{{- $userStorage := default dict (get (default dict $v.config) "storage") -}}
{{- $out := dict -}}
{{- if $v.redis.url -}}
{{- if hasKey $userStorage "metadata" -}}
{{- fail "config.storage.metadata: set by the chart from redis.url; set only one of them" -}}
{{- end -}}
{{- $storage := dict "metadata" $v.redis.url -}}
{{- with $v.redis.namespace -}}{{- $_ := set $storage "metadataNamespace" . -}}{{- end -}}
{{- $_ := set $out "storage" $storage -}}
{{- end -}}
{{- if include "regmirror.clustered" . -}}
{{- if not (or $v.redis.url (get $userStorage "metadata")) -}}
{{- fail (printf "redis.url: replicaCount is %v, and replicas need a shared Redis for their metadata (tags, and the leases that let one replica revalidate a tag or run a sync entry for all); set redis.url to redis://HOST:PORT, or use replicaCount: 1" $v.replicaCount) -}}
{{- end -}}
{{- $dns := printf "%s-headless.%s.svc.cluster.local:%v" (include "regmirror.fullname" .) .Release.Namespace $v.containerPort -}}
{{- $_ := set $out "cluster" (dict "dns" $dns "secretEnv" (include "regmirror.clusterSecretEnv" .) "probeInterval" $v.cluster.probeInterval) -}}
{{- end -}}
{{- $out | toJson -}}
{{- end -}}

{{/* The container's environment for the cluster: its own address and the shared secret. */}}
{{- define "regmirror.clusterEnv" -}}
{{- if include "regmirror.clustered" . -}}
# cluster.self is derived from the pod IP: http://<POD_IP>:<port>.
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: {{ include "regmirror.clusterSecretEnv" . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "regmirror.clusterSecretName" . }}
      key: {{ include "regmirror.clusterSecretKey" . }}
{{- end -}}
{{- end -}}

{{/* Replicas spread over nodes, so one node going away leaves the others serving. */}}
{{- define "regmirror.affinity" -}}
{{- if .Values.affinity -}}
{{- toYaml .Values.affinity -}}
{{- else if and (include "regmirror.clustered" .) (ne .Values.cluster.podAntiAffinity "none") -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "regmirror.selectorLabels" . | fromYaml)) -}}
podAntiAffinity:
{{- if eq .Values.cluster.podAntiAffinity "required" }}
  requiredDuringSchedulingIgnoredDuringExecution:
    {{- list $term | toYaml | nindent 4 }}
{{- else }}
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        {{- toYaml $term | nindent 8 }}
{{- end }}
{{- end -}}
{{- end -}}
