// A plain com.sun.net.httpserver.HttpServer (the JDK's own, no libraries):
// compiled.sh compiles it with javac and runs the class, as a deployed
// application runs.
//
//   GET /stream  streams 20 chunks of 1000 bytes, 100 ms apart: the headers
//                with sendResponseHeaders(200, 0) (chunked), then each chunk
//                written and flushed; a write that fails is logged as
//                "client gone: <exception>", and the exchange closed.
//   GET /        "hello\n".
//
// Handlers run on a cached thread pool, so a stream does not hold up the
// dispatcher. Every line goes to stdout, flushed (System.out is a
// PrintStream with autoflush on println). No signal handling: hangup stops
// it with SIGTERM, and the JVM exits 143.

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.concurrent.Executors;

public class Server {
    // 2 s of stream: a client hanging up mid-stream whose thread waits
    // for a CPU on a loaded machine still finds it running.
    static final int CHUNKS = 20;
    static final int SIZE = 1000;
    static final long GAP_MS = 100;

    public static void main(String[] args) throws IOException {
        int port = Integer.parseInt(args[0]);
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        server.createContext("/stream", Server::stream);
        server.createContext("/", Server::hello);
        server.setExecutor(Executors.newCachedThreadPool());
        server.start();
        System.out.println("listening on " + port);
        System.out.flush();
    }

    static void hello(HttpExchange exchange) throws IOException {
        byte[] body = "hello\n".getBytes(StandardCharsets.US_ASCII);
        exchange.sendResponseHeaders(200, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
        System.out.println("/ done");
    }

    static void stream(HttpExchange exchange) throws IOException {
        byte[] chunk = new byte[SIZE];
        Arrays.fill(chunk, (byte) 'x');
        try {
            exchange.sendResponseHeaders(200, 0); // length 0: chunked
            OutputStream out = exchange.getResponseBody();
            for (int i = 0; i < CHUNKS; i++) {
                if (i > 0) {
                    Thread.sleep(GAP_MS);
                }
                out.write(chunk);
                out.flush();
                System.out.println("/stream chunk " + i + " written");
            }
            out.close(); // the last chunk: 0\r\n\r\n
            System.out.println("/stream done");
        } catch (IOException e) {
            System.out.println("client gone: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            exchange.close();
        }
    }
}
