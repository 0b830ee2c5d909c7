// Dashboard charts, from the JSON the page embeds (display only; figures are in the tables).
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("dashboard-data");
  if (!source || !window.Chart) return;
  const data = JSON.parse(source.textContent);
  const euros = new Intl.NumberFormat("fr-FR", { style: "currency", currency: "EUR" });
  const options = {
    animation: false,
    indexAxis: "y",
    plugins: { legend: { display: false }, tooltip: { callbacks: { label: (c) => euros.format(c.raw) } } },
    scales: { x: { ticks: { callback: (v) => euros.format(v) } } },
  };
  new window.Chart(document.getElementById("chart-communes"), {
    type: "bar",
    data: { labels: data.communes.labels, datasets: [{ data: data.communes.net.map(Number), backgroundColor: "#0a4fa8" }] },
    options,
  });
  new window.Chart(document.getElementById("chart-services"), {
    type: "bar",
    data: { labels: data.services.labels, datasets: [{ data: data.services.amounts.map(Number), backgroundColor: "#1d6e4a" }] },
    options,
  });
});
