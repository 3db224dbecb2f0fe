namespace MLNet.Align.Cli;

/// <summary>Turns the expected failures of a command body (missing or malformed files and folders, a bundle made for
/// another encoder, bad option values) into one <c>error: ...</c> line on stderr and exit code 1, and cancellation
/// into exit code 2, instead of System.CommandLine's default "Unhandled exception" stack trace.</summary>
internal static class CliErrors
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
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>Exceptions whose message names the bad input (file, folder, option) and needs no stack trace.</summary>
    public static bool IsUserError(Exception e) => e is IOException or InvalidDataException or ArgumentException or FormatException
        or NotSupportedException or InvalidOperationException or System.Text.Json.JsonException or UnauthorizedAccessException
        // A file given as an encoder that ONNX Runtime cannot load, or inputs of the wrong size for it (--image-size).
        or Microsoft.ML.OnnxRuntime.OnnxRuntimeException;
}
