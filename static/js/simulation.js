// Draws the simulation chart from the JSON the page embeds (amounts are decimal strings).
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("simulation-data");
  const canvas = document.getElementById("simulation-chart");
  if (!source || !canvas || !window.Chart) return;
  const data = JSON.parse(source.textContent);
  const euros = new Intl.NumberFormat("fr-FR", { style: "currency", currency: "EUR" });
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { label: "Situation actuelle", data: data.current.map(Number), backgroundColor: "#6c757d" },
        { label: "Projeté", data: data.projected.map(Number), backgroundColor: "#0a4fa8" },
      ],
    },
    options: {
      animation: false,
      plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label} : ${euros.format(c.raw)}` } } },
      scales: { y: { ticks: { callback: (v) => euros.format(v) } } },
    },
  });
});
