// Applies the saved (or system) theme before the first paint, so a dark page never flashes white.
(function () {
  var t = localStorage.getItem("byte-theme");
  var dark = t ? t === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.classList.toggle("dark", dark);
})();
