// Draws the simulation chart from the JSON the page embeds (amounts are decimal strings; the
// series' names, in French, come from the server). The simulated series only when the person
// typed values to simulate.
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("simulation-data");
  const canvas = document.getElementById("simulation-chart");
  if (!source || !canvas || !window.Chart) return;
  const data = JSON.parse(source.textContent);
  const names = data.series || { current: "Situation actuelle", projected: "Projeté" };
  const euros = new Intl.NumberFormat("fr-FR", { style: "currency", currency: "EUR" });
  const datasets = [
    { label: names.current, data: data.current.map(Number), backgroundColor: "#6c757d" },
    { label: names.projected, data: data.projected.map(Number), backgroundColor: "#0a4fa8" },
  ];
  if (data.simulated) {
    datasets.push({ label: names.simulated, data: data.simulated.map(Number), backgroundColor: "#b34700" });
  }
  new window.Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: datasets },
    options: {
      animation: false,
      plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label} : ${euros.format(c.raw)}` } } },
      scales: { y: { ticks: { callback: (v) => euros.format(v) } } },
    },
  });
});
