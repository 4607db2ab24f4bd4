// "Processing" state for forms that move money: the button is disabled at once, so a double click
// cannot submit twice (the server refuses a second charge anyway), and the person sees what is happening.
document.querySelectorAll("form[data-processing]").forEach(function (form) {
  form.addEventListener("submit", function () {
    var button = form.querySelector("button[type=submit]");
    if (button) {
      button.disabled = true;
      button.textContent = form.dataset.processing;
    }
  });
});
