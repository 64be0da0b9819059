// Package deploy checks the monitoring files of the distributed mode: Prometheus's
// scrape configuration and alert rules, and Grafana's dashboard and provisioning, as
// docker-compose.yml mounts them. The files hold no Go; these tests keep them parseable
// and in step with the metrics the processes export.
package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// metricNames are the metrics boxoffice's processes export (cmd/boxoffice/metrics.go,
// httpapi): the only ones the rules and the dashboard may refer to, besides
// Prometheus's own.
var metricNames = []string{
	"boxoffice_http_requests_total",
	"boxoffice_http_request_duration_seconds_bucket",
	"boxoffice_http_requests_in_flight",
	"boxoffice_search_cache_requests_total",
	"boxoffice_price_cache_requests_total",
	"boxoffice_db_pool_connections",
	"boxoffice_broker_queue_depth",
	"boxoffice_broker_consumers",
	"boxoffice_task_runs_total",
	"boxoffice_task_duration_seconds_bucket",
	"boxoffice_lock_contended_total",
	"boxoffice_sync_total",
	"boxoffice_sync_duration_seconds_bucket",
	"boxoffice_sync_plans_parsed_total",
	"boxoffice_sync_plans_skipped_total",
	"boxoffice_catalog_version",
	"boxoffice_pricing_version",
	"boxoffice_replica_fallback",
	"boxoffice_panics_total",
	"boxoffice_broker_dead_letters",
	"boxoffice_task_redriven_total",
	"boxoffice_pubsub_subscriptions",
}

// prometheusOwn are the series Prometheus makes itself for every target.
var prometheusOwn = []string{"up"}

// roles are the Compose services that run boxoffice and serve /metrics on :8000.
var roles = []string{"api", "ingest", "worker", "listener"}

// readYAML decodes the YAML file name into v.
func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type prometheusConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName     string `yaml:"job_name"`
		MetricsPath string `yaml:"metrics_path"`
		DNSSD       []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

func TestPrometheusScrapesEveryRole(t *testing.T) {
	var cfg prometheusConfig
	readYAML(t, "prometheus/prometheus.yml", &cfg)
	var scraped []string
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "boxoffice" {
			continue
		}
		if sc.MetricsPath != "/metrics" {
			t.Errorf("job boxoffice: metrics_path %q, want /metrics", sc.MetricsPath)
		}
		for _, sd := range sc.DNSSD {
			if sd.Type != "A" || sd.Port != 8000 {
				t.Errorf("job boxoffice: dns_sd_configs %v: type %s port %d, want A and 8000", sd.Names, sd.Type, sd.Port)
			}
			scraped = append(scraped, sd.Names...)
		}
	}
	sort.Strings(scraped)
	want := slices.Sorted(slices.Values(roles))
	if diff := cmp.Diff(want, scraped); diff != "" {
		t.Errorf("job boxoffice scrapes by DNS (-want +got):\n%s", diff)
	}
	for _, f := range cfg.RuleFiles {
		if _, err := os.Stat(path.Join("prometheus", f)); err != nil {
			t.Errorf("rule_files: %v", err)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRules(t *testing.T) {
	var rules ruleFile
	readYAML(t, "prometheus/alerts.yml", &rules)
	seen := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			switch {
			case r.Alert == "":
				t.Errorf("group %s: a rule without an alert name", g.Name)
			case seen[r.Alert]:
				t.Errorf("alert %s: defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if sev := r.Labels["severity"]; sev != "page" && sev != "ticket" {
				t.Errorf("alert %s: severity %q, want page or ticket", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: wants a summary and a description", r.Alert)
			}
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("alert %s: no expr", r.Alert)
			}
		}
	}
	// What the alerts must watch, by the metric that shows it.
	for _, m := range []string{
		"boxoffice_http_requests_total",                  // 5xx rate
		"boxoffice_http_request_duration_seconds_bucket", // /search p99
		"boxoffice_broker_queue_depth",                   // queue depth
		"boxoffice_sync_total",                           // sync failures
		"boxoffice_replica_fallback",                     // replica fallback
		"boxoffice_task_runs_total",                      // task failures
		"boxoffice_panics_total",                         // recovered panics
		"boxoffice_broker_dead_letters",                  // dead letters waiting
		"boxoffice_task_redriven_total",                  // tasks the outbox re-drove
		"boxoffice_pubsub_subscriptions",                 // Pub/Sub subscriptions retried
	} {
		if !slices.Contains(metricsIn(t, "prometheus/alerts.yml", ruleExprs(rules)), m) {
			t.Errorf("no alert watches %s", m)
		}
	}
}

func ruleExprs(rules ruleFile) []string {
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}

type dashboard struct {
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string     `json:"name"`
			Definition string     `json:"definition"`
			Datasource datasource `json:"datasource"`
			Multi      bool       `json:"multi"`
			IncludeAll bool       `json:"includeAll"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title      string     `json:"title"`
	Type       string     `json:"type"`
	Repeat     string     `json:"repeat"` // a row's: repeated for each value of the variable
	Datasource datasource `json:"datasource"`
	Targets    []struct {
		Expr       string     `json:"expr"`
		Datasource datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // of a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/boxoffice.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/boxoffice.json: %v", err)
	}
	return d
}

// dashboardExprs returns the queries of d: its panels' and its variables'.
func dashboardExprs(d dashboard) (exprs []string, sources []datasource) {
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" {
				sources = append(sources, p.Datasource)
			}
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
				sources = append(sources, tg.Datasource)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		exprs = append(exprs, v.Definition)
		sources = append(sources, v.Datasource)
	}
	return exprs, sources
}

func TestDashboard(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" {
		t.Error("grafana/boxoffice.json: no uid; links to it would change at each load")
	}
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" {
		t.Fatalf("grafana/provisioning/datasources/prometheus.yml: %+v, want one prometheus data source", ds.Datasources)
	}
	want := datasource{Type: "prometheus", UID: ds.Datasources[0].UID}
	exprs, sources := dashboardExprs(d)
	for _, s := range sources {
		if s != want {
			t.Errorf("dashboard data source %+v, want the provisioned %+v", s, want)
			break
		}
	}
	// The dashboard shows every metric.
	used := metricsIn(t, "grafana/boxoffice.json", exprs)
	for _, m := range metricNames {
		if !slices.Contains(used, m) {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

// TestDashboardPerProvider checks that the dashboard shows the syncs of each provider:
// a $provider variable of the provider label's values (several, or all), a row of sync
// panels repeated for each chosen provider, and every query of a sync metric, there or
// elsewhere, narrowed to $provider.
func TestDashboardPerProvider(t *testing.T) {
	d := readDashboard(t)
	found := false
	for _, v := range d.Templating.List {
		if v.Name != "provider" {
			continue
		}
		found = true
		if !regexp.MustCompile(`^label_values\(boxoffice_sync_[a-z_]+(\{[^}]*\})?, *provider\)$`).MatchString(v.Definition) {
			t.Errorf("variable provider: definition %q, want the provider label's values of a boxoffice_sync_ metric", v.Definition)
		}
		if !v.Multi || !v.IncludeAll {
			t.Errorf("variable provider: multi %v, includeAll %v; want both, to show several providers", v.Multi, v.IncludeAll)
		}
	}
	if !found {
		t.Fatal("the dashboard has no variable provider")
	}
	narrowed := regexp.MustCompile(`boxoffice_sync_[a-z_]+\{[^}]*provider=~"\$provider"[^}]*\}`)
	var rows, inRow int
	var walk func([]panel, bool)
	walk = func(ps []panel, repeated bool) {
		for _, p := range ps {
			if p.Type == "row" {
				repeated = p.Repeat == "provider"
				if repeated {
					rows++
				}
				walk(p.Panels, repeated) // a collapsed row's
				continue
			}
			for _, tg := range p.Targets {
				sync := strings.Contains(tg.Expr, "boxoffice_sync_")
				if sync && len(narrowed.FindAllString(tg.Expr, -1)) != len(regexp.MustCompile(`boxoffice_sync_`).FindAllString(tg.Expr, -1)) {
					t.Errorf("panel %q: %s: a sync metric not narrowed to provider=~\"$provider\"", p.Title, tg.Expr)
				}
				if repeated && !sync {
					t.Errorf("panel %q in the provider's row: %s shows no sync metric", p.Title, tg.Expr)
				}
			}
			if repeated {
				inRow++
			}
		}
	}
	walk(d.Panels, false)
	if rows != 1 || inRow < 3 {
		t.Errorf("%d rows repeated by provider with %d panels, want one with the sync panels", rows, inRow)
	}
}

// selector finds the metric names of PromQL selectors (name{…} and name[…]), and
// boxoffice's metric names anywhere in a query.
var (
	selector     = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]`)
	boxofficeRef = regexp.MustCompile(`\bboxoffice_[a-zA-Z0-9_:]*`)
)

// metricsIn returns the metric names the queries exprs of the file name refer to, and
// fails t for any not in metricNames or prometheusOwn.
func metricsIn(t *testing.T, name string, exprs []string) []string {
	t.Helper()
	var found []string
	for _, e := range exprs {
		for _, m := range selector.FindAllStringSubmatch(e, -1) {
			found = append(found, m[1])
		}
		found = append(found, boxofficeRef.FindAllString(e, -1)...)
	}
	slices.Sort(found)
	found = slices.Compact(found)
	for _, m := range found {
		if !slices.Contains(metricNames, m) && !slices.Contains(prometheusOwn, m) {
			t.Errorf("%s refers to %s, which no process exports", name, m)
		}
	}
	return found
}

type composeFile struct {
	Services map[string]struct {
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Volumes []string `yaml:"volumes"`
	} `yaml:"services"`
}

// TestComposeMountsTheFiles checks that docker-compose.yml runs Prometheus and Grafana
// on these files, where their configurations look for them.
func TestComposeMountsTheFiles(t *testing.T) {
	var c composeFile
	readYAML(t, "../docker-compose.yml", &c)
	for _, r := range roles {
		if _, ok := c.Services[r]; !ok {
			t.Errorf("docker-compose.yml has no service %s, which prometheus.yml scrapes", r)
		}
	}
	mounts := func(service string) map[string]string { // target → source
		s, ok := c.Services[service]
		if !ok {
			t.Fatalf("docker-compose.yml has no service %s", service)
		}
		m := map[string]string{}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) >= 2 {
				m[parts[1]] = parts[0]
			}
		}
		return m
	}

	prom := mounts("prometheus")
	var cfg prometheusConfig
	readYAML(t, "prometheus/prometheus.yml", &cfg)
	want := map[string]string{"/etc/prometheus/prometheus.yml": "./deploy/prometheus/prometheus.yml"}
	for _, f := range cfg.RuleFiles {
		want[path.Join("/etc/prometheus", f)] = "./deploy/prometheus/" + f
	}
	for target, source := range want {
		if prom[target] != source {
			t.Errorf("prometheus mounts %q on %s, want %q", prom[target], target, source)
		}
	}

	graf := mounts("grafana")
	if got := graf["/etc/grafana/provisioning"]; got != "./deploy/grafana/provisioning" {
		t.Errorf("grafana mounts %q on /etc/grafana/provisioning, want ./deploy/grafana/provisioning", got)
	}
	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/boxoffice.yml", &providers)
	if len(providers.Providers) != 1 {
		t.Fatalf("grafana/provisioning/dashboards/boxoffice.yml: %d providers, want 1", len(providers.Providers))
	}
	target := path.Join(providers.Providers[0].Options.Path, "boxoffice.json")
	if got := graf[target]; got != "./deploy/grafana/boxoffice.json" {
		t.Errorf("grafana mounts %q on %s, where the dashboard provider looks; want ./deploy/grafana/boxoffice.json", got, target)
	}
}

// TestPromtool runs Prometheus's own checks and the alert rules' unit tests
// (prometheus/alerts_test.yml) when promtool is installed (Debian: apt-get install
// prometheus).
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is required when CI=true (scripts/test-tools.sh installs it)")
		}
		t.Skip("promtool not installed (apt-get install prometheus, or scripts/test-tools.sh); the other tests still parse the files")
	}
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.CommandContext(t.Context(), promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
