<%--
  /stream: 20 lines of 1,000 bytes, 250 ms apart (the first two 1 s), each flushed, through the
  JSP's writer (a PrintWriter, as most pages and many servlets write). Each
  line's fate is logged; at the end, what checkError() says.
--%><%@ page contentType="text/plain" session="false" trimDirectiveWhitespaces="true" %><%
  String line = "x".repeat(999) + "\n";
  for (int i = 1; i <= 20; i++) {
    try {
      out.write(line);
      out.flush();
    } catch (java.io.IOException e) {
      application.log("writer: line " + i + " failed: " + e);
      throw e;
    }
    application.log("writer: line " + i + " ok");
    // The first gap is a second: the client hangs up in it, and a client
    // thread a loaded machine runs late must still close before line 2
    // arrives (else its close, with data unread, is a reset).
    Thread.sleep(i == 1 ? 1000 : 250);
  }
  application.log("writer: done, checkError() = " + response.getWriter().checkError());
%>
