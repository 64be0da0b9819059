// Drives the console in TestConsoleInBrowser, as a person would: once the search shows
// the event named by drive_event in the page's URL, it asks for that event's products,
// then quotes the first product. Each step waits for the page to show the previous one.
"use strict";

(function () {
  const event = new URLSearchParams(location.search).get("drive_event");
  let step = 0;
  const timer = setInterval(() => {
    if (step === 0) {
      const button = document.querySelector('#events-body tr[data-id="' + event + '"] button');
      if (button) {
        button.click();
        step = 1;
      }
    } else if (step === 1) {
      const button = document.querySelector("#products-body tr button");
      if (button) {
        button.click();
        step = 2;
        clearInterval(timer);
      }
    }
  }, 50);
})();
