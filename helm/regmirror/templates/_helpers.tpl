{{- define "regmirror.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "regmirror.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "regmirror.selectorLabels" -}}
app.kubernetes.io/name: {{ include "regmirror.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "regmirror.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "regmirror.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "regmirror.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "regmirror.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* registry/repository:tag, or registry/repository@digest when pinned. */}}
{{- define "regmirror.image" -}}
{{- $img := .Values.image -}}
{{- $repo := $img.repository -}}
{{- if $img.registry -}}{{- $repo = printf "%s/%s" (trimSuffix "/" $img.registry) $img.repository -}}{{- end -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $repo $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion $img.tag | toString) -}}
{{- end -}}
{{- end -}}

{{/*
A Kubernetes quantity ("50Gi", "100G", "1.5Ti", "1073741824") times maxSizePercent, in whole MiB:
the mirror's default storage.maxSize.
*/}}
{{- define "regmirror.maxSize" -}}
{{- $size := toString .Values.persistence.size -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$" $size) -}}
{{- fail (printf "persistence.size: %q is not a size such as 50Gi or 100G" $size) -}}
{{- end -}}
{{- $units := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 -}}
{{- $number := regexReplaceAll "[A-Za-z]+$" $size "" | float64 -}}
{{- $unit := get $units (regexReplaceAll "^[0-9.]+" $size "") -}}
{{- $mib := divf (mulf $number $unit (float64 .Values.persistence.maxSizePercent)) (mulf 100 1048576) | floor | int64 -}}
{{- if lt $mib 1 -}}
{{- fail (printf "persistence.size: %s × %v%% is less than 1MiB, too small for a cache" $size .Values.persistence.maxSizePercent) -}}
{{- end -}}
{{- printf "%dMiB" $mib -}}
{{- end -}}

{{- define "regmirror.listen" -}}
{{- $host := .host | toString -}}
{{- if contains ":" $host -}}{{- $host = printf "[%s]" $host -}}{{- end -}}
{{- printf "%s:%v" $host .port -}}
{{- end -}}

{{/* "true" when the chart configures TLS (an existing Secret or a cert-manager Certificate), else empty. */}}
{{- define "regmirror.tls" -}}
{{- $tls := .Values.tls -}}
{{- if and $tls.existingSecret $tls.certManager.enabled -}}
{{- fail "tls: set either tls.existingSecret or tls.certManager.enabled, not both" -}}
{{- end -}}
{{- if and $tls.certManager.enabled (not $tls.certManager.issuerRef.name) -}}
{{- fail "tls.certManager.issuerRef.name: the Issuer or ClusterIssuer that signs the mirror's certificate" -}}
{{- end -}}
{{- $on := or $tls.existingSecret $tls.certManager.enabled -}}
{{- if and (not $on) (or $tls.clientCA.secretName $tls.clientCA.configMapName $tls.port) -}}
{{- fail "tls.clientCA and tls.port need a certificate: set tls.existingSecret or tls.certManager" -}}
{{- end -}}
{{- if and $tls.clientCA.secretName $tls.clientCA.configMapName -}}
{{- fail "tls.clientCA: set either secretName or configMapName, not both" -}}
{{- end -}}
{{- if and $tls.port (or (eq (int $tls.port) (int .Values.containerPort)) (eq (int $tls.port) (int (default 0 .Values.metrics.port)))) -}}
{{- fail (printf "tls.port: %v is already containerPort or metrics.port" $tls.port) -}}
{{- end -}}
{{- if $on -}}true{{- end -}}
{{- end -}}

{{/* The Secret holding tls.crt and tls.key. */}}
{{- define "regmirror.tlsSecret" -}}
{{- default (printf "%s-tls" (include "regmirror.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{/* The scheme, and so the port name, of containerPort: https when TLS is on without a tls.port of its own. */}}
{{- define "regmirror.scheme" -}}
{{- if and (include "regmirror.tls" .) (not .Values.tls.port) -}}https{{- else -}}http{{- end -}}
{{- end -}}

{{/* A probe from values, speaking HTTPS to an HTTPS containerPort (kubelet does not verify the certificate). */}}
{{- define "regmirror.probe" -}}
{{- $probe := deepCopy .probe -}}
{{- if and (eq .scheme "https") (kindIs "map" (get $probe "httpGet")) -}}
{{- $get := get $probe "httpGet" -}}
{{- if not (hasKey $get "scheme") -}}{{- $_ := set $get "scheme" "HTTPS" -}}{{- end -}}
{{- if eq (toString (get $get "port")) "http" -}}{{- $_ := set $get "port" "https" -}}{{- end -}}
{{- end -}}
{{- toYaml $probe -}}
{{- end -}}

{{/* mirror.config.json as JSON: values.config merged over the chart's defaults. */}}
{{- define "regmirror.configJson" -}}
{{- $user := deepCopy (default dict .Values.config) -}}
{{- if hasKey $user "listen" -}}
{{- fail "config.listen: set by the chart from listenHost and containerPort; set those instead" -}}
{{- end -}}
{{- $userStorage := default dict (get $user "storage") -}}
{{- if hasKey $userStorage "path" -}}
{{- fail "config.storage.path: set by the chart to persistence.mountPath (the cache volume); set that instead" -}}
{{- end -}}
{{- if hasKey (default dict (get $user "metrics")) "listen" -}}
{{- fail "config.metrics.listen: set by the chart from metrics.port; set that instead" -}}
{{- end -}}
{{- if hasKey $user "tls" -}}
{{- fail "config.tls: set by the chart from tls.existingSecret or tls.certManager (and tls.clientCA, tls.port); set those instead" -}}
{{- end -}}
{{- range $key := list "auth" "access" "audit" -}}
{{- if hasKey $user $key -}}
{{- fail (printf "config.%s: set by the chart from the top-level %s.* values (secrets mounted from existing Secrets); set those instead" $key $key) -}}
{{- end -}}
{{- end -}}
{{- range $name, $u := (default dict (get $user "upstreams")) -}}
{{- if and (kindIs "map" $u) (hasKey $u "password") -}}
{{- fail (printf "config.upstreams.%s.password: a password would sit in a ConfigMap; put it in credentials.env or credentials.existingSecret and reference it with passwordEnv" $name) -}}
{{- end -}}
{{- end -}}
{{- $upstreams := default dict (get $user "upstreams") -}}
{{- $default := get $user "defaultUpstream" -}}
{{- if and $default (not (hasKey $upstreams (toString $default))) -}}
{{- fail (printf "config.defaultUpstream: %q is not one of config.upstreams (%s)" $default (keys $upstreams | sortAlpha | join ", ")) -}}
{{- end -}}
{{- $defaults := dict
  "listen" (include "regmirror.listen" (dict "host" .Values.listenHost "port" .Values.containerPort))
  "storage" (dict "path" .Values.persistence.mountPath "maxSize" (include "regmirror.maxSize" .))
  "shutdownGrace" (printf "%ds" (sub (int .Values.terminationGracePeriodSeconds) 10)) -}}
{{- if .Values.metrics.port -}}
{{- $_ := set $defaults "metrics" (dict "listen" (include "regmirror.listen" (dict "host" .Values.listenHost "port" .Values.metrics.port))) -}}
{{- end -}}
{{- if include "regmirror.tls" . -}}
{{- $tls := dict "cert" "/etc/regmirror-tls/tls.crt" "key" "/etc/regmirror-tls/tls.key" -}}
{{- with .Values.tls.clientCA -}}
{{- if or .secretName .configMapName -}}{{- $_ := set $tls "clientCA" (printf "/etc/regmirror-client-ca/%s" .key) -}}{{- end -}}
{{- end -}}
{{- if .Values.tls.port -}}
{{- $_ := set $tls "listen" (include "regmirror.listen" (dict "host" .Values.listenHost "port" .Values.tls.port)) -}}
{{- end -}}
{{- $_ := set $defaults "tls" $tls -}}
{{- end -}}
{{- include "regmirror.trustChecks" (dict "Values" .Values "upstreams" $upstreams) -}}
{{- $trust := include "regmirror.trustConfig" . | fromJson -}}
{{- $cluster := include "regmirror.clusterConfig" . | fromJson -}}
{{- mustMergeOverwrite $defaults $trust $cluster $user | toPrettyJson -}}
{{- end -}}

{{/* The address node daemons use for the mirror, for NOTES.txt. */}}
{{- define "regmirror.nodeAddress" -}}
{{- if .Values.hostPort.enabled -}}
{{- $ip := default "127.0.0.1" .Values.hostPort.hostIP -}}
{{- if or (eq $ip "0.0.0.0") (eq $ip "::") -}}{{- $ip = "127.0.0.1" -}}{{- end -}}
{{- if contains ":" $ip -}}{{- $ip = printf "[%s]" $ip -}}{{- end -}}
{{- printf "%s:%v" $ip .Values.hostPort.port -}}
{{- else if and (eq .Values.service.type "NodePort") .Values.service.nodePort -}}
{{- printf "NODE_IP:%v" .Values.service.nodePort -}}
{{- else if eq .Values.service.type "NodePort" -}}
NODE_IP:NODE_PORT
{{- else -}}
{{- printf "CLUSTER_IP:%v" .Values.service.port -}}
{{- end -}}
{{- end -}}

{{/* Where the chart mounts the trust boundary's Secrets: whole directories, so rotations reach the pod. */}}
{{- define "regmirror.htpasswdDir" -}}/etc/regmirror-htpasswd{{- end -}}
{{- define "regmirror.signingKeyDir" -}}/etc/regmirror-signing-key{{- end -}}

{{/* The directory audit.volume is mounted at, when the audit log is a file there; else empty. */}}
{{- define "regmirror.auditVolumeDir" -}}
{{- $audit := .Values.audit -}}
{{- if and $audit.enabled $audit.volume (ne $audit.path "stdout") -}}{{- dir $audit.path -}}{{- end -}}
{{- end -}}

{{/* The server's auth, access and audit sections (exact config names), as JSON. */}}
{{- define "regmirror.trustConfig" -}}
{{- $v := .Values -}}
{{- $out := dict -}}
{{- if $v.auth.enabled -}}
{{- $auth := dict "tokenTTL" $v.auth.tokenTTL -}}
{{- with $v.auth.htpasswd -}}{{- if .existingSecret -}}{{- $_ := set $auth "htpasswd" (printf "%s/%s" (include "regmirror.htpasswdDir" $) .key) -}}{{- end -}}{{- end -}}
{{- with $v.auth.signingKey -}}{{- if .existingSecret -}}{{- $_ := set $auth "signingKey" (printf "%s/%s" (include "regmirror.signingKeyDir" $) .key) -}}{{- end -}}{{- end -}}
{{- with $v.auth.groups -}}{{- $_ := set $auth "groups" . -}}{{- end -}}
{{- with $v.auth.realm -}}{{- $_ := set $auth "realm" . -}}{{- end -}}
{{- $_ := set $out "auth" $auth -}}
{{- $a := $v.access -}}
{{- $_ := set $out "access" (dict "anonymous" $a.anonymous "rules" $a.rules "admin" $a.admin "metrics" $a.metrics "trustedProxies" $a.trustedProxies) -}}
{{- else if $v.access.trustedProxies -}}
{{- /* The one access key that means something without auth: the audit log's client address. */ -}}
{{- $_ := set $out "access" (dict "trustedProxies" $v.access.trustedProxies) -}}
{{- end -}}
{{- if $v.audit.enabled -}}
{{- $_ := set $out "audit" (dict "path" $v.audit.path "maxSize" $v.audit.maxSize "maxFiles" $v.audit.maxFiles) -}}
{{- end -}}
{{- deepCopy $out | toJson -}}
{{- end -}}

{{/*
Trust values that cannot work, refused at render time with the value to change, rather than by the
server at start (a crash-looping pod) or not at all (tokens failing across replicas).
*/}}
{{- define "regmirror.trustChecks" -}}
{{- $v := .Values -}}
{{- $auth := $v.auth -}}
{{- $access := $v.access -}}
{{- if not $auth.enabled -}}
{{- range $name, $u := .upstreams -}}
{{- if and (kindIs "map" $u) (get $u "private") -}}
{{- fail (printf "config.upstreams.%s.private: needs auth.enabled: true; without auth anyone who reaches the mirror can read everything" $name) -}}
{{- end -}}
{{- end -}}
{{- $set := list -}}
{{- range $key := list "anonymous" "rules" -}}{{- if get $access $key -}}{{- $set = append $set (printf "access.%s" $key) -}}{{- end -}}{{- end -}}
{{- if or $access.admin.users $access.admin.groups -}}{{- $set = append $set "access.admin" -}}{{- end -}}
{{- if ne $access.metrics "anonymous" -}}{{- $set = append $set "access.metrics" -}}{{- end -}}
{{- if $auth.htpasswd.existingSecret -}}{{- $set = append $set "auth.htpasswd" -}}{{- end -}}
{{- if $auth.groups -}}{{- $set = append $set "auth.groups" -}}{{- end -}}
{{- if $auth.realm -}}{{- $set = append $set "auth.realm" -}}{{- end -}}
{{- if $auth.signingKey.existingSecret -}}{{- $set = append $set "auth.signingKey" -}}{{- end -}}
{{- if $set -}}
{{- fail (printf "%s: set, but auth.enabled is false; set auth.enabled: true (without auth everyone may read everything)" (join ", " $set)) -}}
{{- end -}}
{{- else -}}
{{- /* Each pod generates its own key into its own volume: fine while every client talks to one pod. */ -}}
{{- $shared := "" -}}
{{- if and (eq $v.mode "statefulset") (gt (int $v.replicaCount) 1) -}}
{{- $shared = printf "%v replicas each generate their own key into their own volume" $v.replicaCount -}}
{{- else if and (eq $v.mode "daemonset") (or $v.ingress.enabled (ne $v.service.type "ClusterIP")) -}}
{{- $shared = printf "the mirror on each node generates its own key, and the %s sends a client to any of them" (ternary "Ingress" (printf "%s Service" $v.service.type) $v.ingress.enabled) -}}
{{- end -}}
{{- if and $shared (not $auth.signingKey.existingSecret) -}}
{{- fail (printf "auth.signingKey.existingSecret: %s, so a token one issued fails on the others; put one PEM private key in a Secret (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256) and name it here" $shared) -}}
{{- end -}}
{{- if and $v.serviceMonitor.enabled (eq $access.metrics "admin") (not $v.serviceMonitor.basicAuth.secretName) -}}
{{- fail "serviceMonitor.basicAuth.secretName: access.metrics is admin, so Prometheus must log in as an access.admin user; name a Secret holding its user name and password" -}}
{{- end -}}
{{- $hosts := list -}}
{{- range $name, $u := .upstreams -}}
{{- $hosts = append $hosts $name -}}
{{- if kindIs "map" $u -}}{{- range (default list (get $u "aliases")) -}}{{- $hosts = append $hosts (toString .) -}}{{- end -}}{{- end -}}
{{- end -}}
{{- include "regmirror.checkPatterns" (dict "key" "access.anonymous" "patterns" $access.anonymous "hosts" $hosts) -}}
{{- range $i, $rule := $access.rules -}}
{{- include "regmirror.checkPatterns" (dict "key" (printf "access.rules[%d].repositories" $i) "patterns" $rule.repositories "hosts" $hosts) -}}
{{- if not (or $rule.users $rule.groups $rule.tokens) -}}
{{- fail (printf "access.rules[%d]: must name users, groups or tokens (anonymous readers go in access.anonymous)" $i) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $audit := $v.audit -}}
{{- if and $audit.enabled (ne $audit.path "stdout") -}}
{{- $onCache := hasPrefix (printf "%s/" (trimSuffix "/" $v.persistence.mountPath)) $audit.path -}}
{{- $onExtra := false -}}
{{- range $v.extraVolumeMounts -}}{{- if hasPrefix (printf "%s/" (trimSuffix "/" .mountPath)) $audit.path -}}{{- $onExtra = true -}}{{- end -}}{{- end -}}
{{- if and $audit.volume (or $onCache $onExtra) -}}
{{- fail (printf "audit.volume: %s is already on a mounted volume (persistence.mountPath or extraVolumeMounts); leave audit.volume empty or move audit.path" $audit.path) -}}
{{- end -}}
{{- if not (or $audit.volume $onCache $onExtra) -}}
{{- fail (printf "audit.path: %s is on no volume that can hold it (the root filesystem is read-only); use \"stdout\", a path under persistence.mountPath (%s) or an extraVolumeMounts mountPath, or give audit.volume" $audit.path $v.persistence.mountPath) -}}
{{- end -}}
{{- $reserved := list "/" "/tmp" "/etc/regmirror" (trimSuffix "/" $v.persistence.mountPath) (include "regmirror.htpasswdDir" .) (include "regmirror.signingKeyDir" .) -}}
{{- if and $audit.volume (has (dir $audit.path) $reserved) -}}
{{- fail (printf "audit.path: audit.volume would be mounted at %s, which the chart already uses; put the file in a directory of its own, e.g. /var/log/regmirror/audit.log" (dir $audit.path)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Each "<upstream>/<pattern>" must start with a configured upstream (or alias), as the server requires. */}}
{{- define "regmirror.checkPatterns" -}}
{{- $hosts := .hosts -}}
{{- $key := .key -}}
{{- range $i, $p := .patterns -}}
{{- $host := regexReplaceAll "/.*$" (toString $p) "" -}}
{{- if not (has $host $hosts) -}}
{{- fail (printf "%s[%d]: %q must start with one of config.upstreams (%s), e.g. \"%s/team/*\"" $key $i $p (join ", " (sortAlpha $hosts)) (first (sortAlpha $hosts))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
