Console.WriteLine("mlnet-align: commands land with the Foundation issue.");
