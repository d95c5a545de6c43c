{{/* The name of every object: resilient-operator, or <release>-resilient-operator. */}}
{{- define "resilient-operator.fullname" -}}
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

{{/* The pods' selector: the operator's own name label, as in manifests/. */}}
{{- define "resilient-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "resilient-operator.fullname" . }}
{{- end -}}

{{/* Labels of every object (manifests/ sets part-of through kustomize). */}}
{{- define "resilient-operator.labels" -}}
app.kubernetes.io/part-of: resilient-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of the objects that carry the name label too (Deployment, Service). */}}
{{- define "resilient-operator.namedLabels" -}}
{{ include "resilient-operator.selectorLabels" . }}
{{ include "resilient-operator.labels" . }}
{{- end -}}

{{- define "resilient-operator.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The reconcile rules, generated from operator/resilient_operator/kube/kinds.py by
     `make crds` (files/rbac-reconcile.yaml): cluster (all), namespaced, clusterScoped. */}}
{{- define "resilient-operator.rules" -}}
{{- $rules := .Files.Get "files/rbac-reconcile.yaml" | fromYaml -}}
{{- toYaml (index $rules .key) -}}
{{- end -}}

{{- define "resilient-operator.subjects" -}}
- kind: ServiceAccount
  name: {{ include "resilient-operator.fullname" . }}
  namespace: {{ .Release.Namespace }}
{{- end -}}
