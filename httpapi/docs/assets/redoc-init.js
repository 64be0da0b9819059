// Renders /openapi.json with ReDoc on /redoc (httpapi.DocsHandler). A file, not an
// inline script, so the Content-Security-Policy can forbid inline scripts. The theme
// uses system fonts: ReDoc's defaults name web fonts (Montserrat, Roboto) that pages
// usually fetch from Google Fonts, and nothing here may come from elsewhere.
Redoc.init(
  "/openapi.json",
  {
    expandResponses: "200",
    theme: {
      typography: {
        fontFamily: 'system-ui, -apple-system, "Segoe UI", sans-serif',
        headings: { fontFamily: 'system-ui, -apple-system, "Segoe UI", sans-serif' },
        code: { fontFamily: "ui-monospace, Menlo, Consolas, monospace" },
      },
    },
  },
  document.getElementById("redoc"),
);
