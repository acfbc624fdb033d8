{{/* The pod template shared by the StatefulSet and the DaemonSet. */}}
{{- define "regmirror.podTemplate" -}}
{{- $scheme := include "regmirror.scheme" . -}}
metadata:
  labels:
    {{- include "regmirror.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A changed config or credential rolls the pods: environment variables are read only at start, and
    # a rollout needs no SIGHUP (README, "Reloading the configuration").
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- if .Values.credentials.env }}
    checksum/credentials: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "regmirror.serviceAccountName" . }}
  automountServiceAccountToken: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- if and (eq .Values.mode "daemonset") .Values.persistence.hostPathChown }}
  initContainers:
    # fsGroup does not apply to hostPath: hand the directory to the mirror's user, and nothing more.
    - name: chown-cache
      image: {{ include "regmirror.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command:
        - node
        - -e
        - require('node:fs').chownSync(process.argv[1], Number(process.argv[2]), Number(process.argv[3]))
        - {{ .Values.persistence.mountPath | quote }}
        - {{ .Values.podSecurityContext.runAsUser | default 10001 | quote }}
        - {{ .Values.podSecurityContext.runAsGroup | default 10001 | quote }}
      securityContext:
        runAsUser: 0
        runAsGroup: 0
        runAsNonRoot: false
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: { drop: [ALL], add: [CHOWN] }
        seccompProfile: { type: RuntimeDefault }
      resources:
        requests: { cpu: 10m, memory: 32Mi }
        limits: { memory: 64Mi }
      volumeMounts:
        - name: cache
          mountPath: {{ .Values.persistence.mountPath }}
  {{- end }}
  containers:
    - name: regmirror
      image: {{ include "regmirror.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      # The image's CMD, spelled out: the config path is where the ConfigMap is mounted.
      command: ["node", "/app/dist/cli/main.js", "serve", "--config", "/etc/regmirror/mirror.config.json"]
      ports:
        - name: {{ $scheme }}
          containerPort: {{ .Values.containerPort }}
          protocol: TCP
          {{- if .Values.hostPort.enabled }}
          hostPort: {{ .Values.hostPort.port }}
          {{- with .Values.hostPort.hostIP }}
          hostIP: {{ . }}
          {{- end }}
          {{- end }}
        {{- if .Values.tls.port }}
        - name: https
          containerPort: {{ .Values.tls.port }}
          protocol: TCP
        {{- end }}
        {{- if .Values.metrics.port }}
        - name: metrics
          containerPort: {{ .Values.metrics.port }}
          protocol: TCP
        {{- end }}
      {{- if or .Values.credentials.env .Values.credentials.existingSecret }}
      # Each key is an environment variable that a config upstream names in passwordEnv.
      envFrom:
        {{- if .Values.credentials.env }}
        - secretRef:
            name: {{ include "regmirror.fullname" . }}-credentials
        {{- end }}
        {{- with .Values.credentials.existingSecret }}
        - secretRef:
            name: {{ . }}
        {{- end }}
      {{- end }}
      {{- $clusterEnv := include "regmirror.clusterEnv" . }}
      {{- if or .Values.extraEnv $clusterEnv }}
      env:
        {{- with $clusterEnv }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      {{- with .Values.lifecycle }}
      lifecycle:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      livenessProbe:
        {{- include "regmirror.probe" (dict "probe" .Values.livenessProbe "scheme" $scheme) | nindent 8 }}
      readinessProbe:
        {{- include "regmirror.probe" (dict "probe" .Values.readinessProbe "scheme" $scheme) | nindent 8 }}
      {{- with .Values.startupProbe }}
      startupProbe:
        {{- include "regmirror.probe" (dict "probe" . "scheme" $scheme) | nindent 8 }}
      {{- end }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/regmirror
          readOnly: true
        - name: cache
          mountPath: {{ .Values.persistence.mountPath }}
        - name: tmp
          mountPath: /tmp
        {{- if include "regmirror.tls" . }}
        # Whole directories, never subPath: the kubelet's updates of a renewed Secret then reach the
        # pod, and the mirror serves them without a restart.
        - name: tls
          mountPath: /etc/regmirror-tls
          readOnly: true
        {{- if or .Values.tls.clientCA.secretName .Values.tls.clientCA.configMapName }}
        - name: client-ca
          mountPath: /etc/regmirror-client-ca
          readOnly: true
        {{- end }}
        {{- end }}
        {{- if .Values.auth.enabled }}
        {{- if .Values.auth.htpasswd.existingSecret }}
        # Also a whole directory: the mirror re-reads an edited htpasswd Secret without a restart.
        - name: htpasswd
          mountPath: {{ include "regmirror.htpasswdDir" . }}
          readOnly: true
        {{- end }}
        {{- if .Values.auth.signingKey.existingSecret }}
        - name: signing-key
          mountPath: {{ include "regmirror.signingKeyDir" . }}
          readOnly: true
        {{- end }}
        {{- end }}
        {{- with include "regmirror.auditVolumeDir" . }}
        - name: audit
          mountPath: {{ . }}
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "regmirror.fullname" . }}
    - name: tmp
      emptyDir:
        sizeLimit: {{ .Values.tmpSizeLimit }}
    {{- if include "regmirror.tls" . }}
    - name: tls
      secret:
        secretName: {{ include "regmirror.tlsSecret" . }}
    {{- with .Values.tls.clientCA }}
    {{- if .secretName }}
    - name: client-ca
      secret:
        secretName: {{ .secretName }}
    {{- else if .configMapName }}
    - name: client-ca
      configMap:
        name: {{ .configMapName }}
    {{- end }}
    {{- end }}
    {{- end }}
    {{- if .Values.auth.enabled }}
    {{- with .Values.auth.htpasswd.existingSecret }}
    - name: htpasswd
      secret:
        secretName: {{ . }}
    {{- end }}
    {{- with .Values.auth.signingKey.existingSecret }}
    - name: signing-key
      secret:
        secretName: {{ . }}
    {{- end }}
    {{- end }}
    {{- if include "regmirror.auditVolumeDir" . }}
    - name: audit
      {{- toYaml .Values.audit.volume | nindent 6 }}
    {{- end }}
    {{- if eq .Values.mode "daemonset" }}
    - name: cache
      hostPath:
        path: {{ .Values.persistence.hostPath }}
        type: {{ .Values.persistence.hostPathType }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with include "regmirror.affinity" . }}
  affinity:
    {{- . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
