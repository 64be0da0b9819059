// Drives the console in TestConsoleInBrowser, as a person would: once the search shows
// the event named by drive_event in the page's URL, it asks for that event's products,
// then quotes the first product. Each step waits for the page to show the previous one.
// With drive_more=N (TestConsoleMoreInBrowser) it clicks "More" whenever it shows, N
// times at most: the console hides it while a page loads.
"use strict";

(function () {
  const more = Number(new URLSearchParams(location.search).get("drive_more") || 0);
  let clicks = 0;
  const pager = setInterval(() => {
    const button = document.getElementById("more");
    if (clicks >= more) {
      clearInterval(pager);
    } else if (button && !button.hidden) {
      button.click();
      clicks++;
    }
  }, 50);
})();

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
