// Renders /openapi.json with Swagger UI on /docs (httpapi.DocsHandler). A file, not an
// inline script, so the Content-Security-Policy can forbid inline scripts.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout", // no top bar: this page documents one API
  validatorUrl: null, // the default badge asks validator.swagger.io
  displayRequestDuration: true,
});
