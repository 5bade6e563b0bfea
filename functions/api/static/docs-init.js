// Starts Swagger UI on the document this API serves beside the page. Paths are relative, so the page
// works wherever the API is mounted. The "Authorize" button appears only when the document declares
// an API key (the API has one configured); the key entered there is sent as X-API-Key by "Try it out".
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    // "/docs" and "/docs/" both serve the page; the document sits beside "/docs" either way.
    url: window.location.pathname.endsWith("/") ? "../openapi.json" : "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
