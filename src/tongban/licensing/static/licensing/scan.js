// The verifier page's camera: where the browser has a QR detector (BarcodeDetector), a
// button opens the back camera, and the first code seen fills the form and submits it.
// Everywhere else the page works as it is: paste the scanned text.
(function () {
  "use strict";
  var button = document.getElementById("scan-button");
  var video = document.getElementById("scan-video");
  var text = document.getElementById("text");
  if (!button || !video || !text || !("BarcodeDetector" in window) || !navigator.mediaDevices) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" } })
      .then(function (stream) {
        video.srcObject = stream;
        video.hidden = false;
        return video.play().then(function () {
          var tick = function () {
            detector.detect(video).then(function (codes) {
              if (codes.length) {
                stream.getTracks().forEach(function (track) { track.stop(); });
                text.value = codes[0].rawValue;
                text.form.submit();
              } else {
                window.requestAnimationFrame(tick);
              }
            });
          };
          tick();
        });
      })
      .catch(function () {
        button.hidden = true;
      });
  });
})();
