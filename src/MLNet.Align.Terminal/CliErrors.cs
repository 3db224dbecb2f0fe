namespace MLNet.Align.Terminal;

/// <summary>Turns the expected failures of a command body (missing or malformed files and folders, a bundle made for
/// another encoder, bad option values) into one <c>error: ...</c> line on stderr and exit code 1, and cancellation
/// into exit code 2, instead of System.CommandLine's default "Unhandled exception" stack trace.</summary>
public static class CliErrors
{
    /// <summary>Runs <paramref name="body"/> and returns its exit code, 1 on a user error, 2 on cancellation.</summary>
    public static int Run(Func<int> body)
    {
        try { return body(); }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("Cancelled.");
            return 2;
        }
        catch (Exception e) when (IsUserError(e))
        {
            Console.Error.WriteLine($"error: {MessageOf(e)}");
            if (Environment.GetEnvironmentVariable("MLNET_ALIGN_TRACE") == "1") Console.Error.WriteLine(e);
            return 1;
        }
    }

    /// <summary>The message as one line: an <see cref="ArgumentException"/>'s " (Parameter 'x')" suffix and an
    /// <see cref="ArgumentOutOfRangeException"/>'s "Actual value was" line are dropped (the message names the value).</summary>
    public static string MessageOf(Exception e)
    {
        string m = e.Message;
        if (e is ArgumentException { ParamName: { } name })
        {
            if (e is ArgumentOutOfRangeException && m.IndexOf('\n') is int nl and >= 0) m = m[..nl].TrimEnd('\r');
            m = m.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal);
        }
        return m;
    }

    /// <summary>Exceptions whose message names the bad input (file, folder, option) and needs no stack trace.</summary>
    public static bool IsUserError(Exception e) => e is IOException or InvalidDataException or ArgumentException or FormatException
        or NotSupportedException or InvalidOperationException or System.Text.Json.JsonException or UnauthorizedAccessException
        // A file given as an encoder that ONNX Runtime cannot load, or inputs of the wrong size for it (--image-size).
        or Microsoft.ML.OnnxRuntime.OnnxRuntimeException;
}
