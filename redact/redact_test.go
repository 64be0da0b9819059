package redact_test

import (
	"strings"
	"testing"

	"boxoffice/redact"
)

func TestURL(t *testing.T) {
	tests := []struct {
		give, want string
	}{
		{"postgres://u:secret@db:5432/boxoffice?sslmode=disable", "postgres://u:xxxxx@db:5432/boxoffice?sslmode=disable"},
		{"postgres://postgres@127.0.0.1:5432/boxoffice", "postgres://xxxxx@127.0.0.1:5432/boxoffice"},
		{"https://feed.example/api/events", "https://feed.example/api/events"},
		{"https://feed.example/api/events?api_key=secret&page=2", "https://feed.example/api/events?api_key=xxxxx&page=2"},
		{"https://feed.example/e?X-Amz-Signature=secret&X-Amz-Credential=secret;format=xml", "https://feed.example/e?X-Amz-Signature=xxxxx&X-Amz-Credential=xxxxx;format=xml"},
		{"https://feed.example/e#access_token=secret", "https://feed.example/e#access_token=xxxxx"},
		{"https://feed.example/e?Access%5FToken=secret", "https://feed.example/e?Access%5FToken=xxxxx"},
		{"https://TOKENsecret@feed.example/e", "https://xxxxx@feed.example/e"},
		// Malformed: a password with '/', '#', '?' or '@' that a parser would split at.
		{"postgres://u:se/cr#et@db:bad/x", "postgres://u:xxxxx@db:bad/x"},
		{"amqp://u:se@cr?et@rabbit:5672/", "amqp://u:xxxxx@rabbit:5672/"},
		{"redis://:secret@redis:6379/0", "redis://:xxxxx@redis:6379/0"},
		{"u:secret@host", "u:xxxxx@host"},
		{"postgres://u:secret@db:5432/x?sslpassword=secret&sslmode=require", "postgres://u:xxxxx@db:5432/x?sslpassword=xxxxx&sslmode=require"},
		{"host=db user=u password=secret sslmode=disable", "host=db user=u password=xxxxx sslmode=disable"},
		{"https://feed.example/e?q=a b&token=secret", "https://feed.example/e?q=a b&token=xxxxx"},
		{"not a url at all", "not a url at all"},
		{"", ""},
	}
	for _, tt := range tests {
		got := redact.URL(tt.give)
		if got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.give, got, tt.want)
		}
		if strings.Contains(got, "secret") {
			t.Errorf("URL(%q) = %q leaks the secret", tt.give, got)
		}
	}
}

func TestSecretKey(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"api_key", true}, {"APIKEY", true}, {"token", true}, {"password", true}, {"client_secret", true},
		{"X-Amz-Signature", true}, {"auth", true}, {"sessionid", true},
		{"page", false}, {"format", false}, {"sslmode", false}, {"search_path", false},
	}
	for _, tt := range tests {
		if got := redact.SecretKey(tt.give); got != tt.want {
			t.Errorf("SecretKey(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}
