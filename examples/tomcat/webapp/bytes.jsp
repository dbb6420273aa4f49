<%--
  /bytes: the same 20 chunks through the response's OutputStream (what a
  download or a servlet writing bytes uses). A failed flush throws
  Tomcat's ClientAbortException; it is logged with its cause and rethrown,
  as an application that does not catch it would.
--%><%@ page contentType="application/octet-stream" session="false" trimDirectiveWhitespaces="true" %><%
  byte[] chunk = ("x".repeat(999) + "\n").getBytes();
  jakarta.servlet.ServletOutputStream body = response.getOutputStream();
  for (int i = 1; i <= 20; i++) {
    try {
      body.write(chunk);
      body.flush();
    } catch (java.io.IOException e) {
      application.log("bytes: chunk " + i + " failed: " + e);
      throw e;
    }
    application.log("bytes: chunk " + i + " ok");
    // The first gap is a second: the client hangs up in it, and a client
    // thread a loaded machine runs late must still close before line 2
    // arrives (else its close, with data unread, is a reset).
    Thread.sleep(i == 1 ? 1000 : 250);
  }
  application.log("bytes: done");
%>
